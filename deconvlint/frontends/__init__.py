"""Front ends: translate a framework's model into :class:`deconvlint.core.ir.Graph`.

Each front end imports its framework lazily, so ``import deconvlint`` stays cheap.
"""
