"""deconvlint: find upsampling layers that paint checkerboard artifacts."""

from __future__ import annotations

__version__ = "0.1.0"
