"""Rewrites that keep the output shape: the suggestions printed with findings, the replacement
layers :func:`deconvlint.fix` builds, and the rewrites for classes of installed libraries.
"""
