"""The torch front end: an ``nn.Module`` (or ``ExportedProgram``) in, a
:class:`~deconvlint.core.ir.Graph` out.  ``load`` picks the reader (hooks, fx, export); the
op and module tables turn what a reader saw into IR nodes.  Nothing here imports torch at
import time of the package.
"""
