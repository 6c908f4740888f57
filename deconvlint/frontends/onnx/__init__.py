"""The ONNX front end: a ``.onnx`` file or ``ModelProto`` in, a :class:`~deconvlint.core.ir.Graph`
out.  ``reader`` is the entry point; the other modules are its stages (skim, prepare, infer,
walk) and its op table with the converters (window, resize, shuffle, fold).
"""
