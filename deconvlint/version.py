"""deconvlint's version, in a leaf module.

The modules that print it (the JSON and SARIF reports, the HTML page, ``--version``) import it from
here: the package's ``__init__`` loads its public names from modules that import those, so taking
it from the package would be an import circle.

>>> from deconvlint.version import __version__
>>> import deconvlint
>>> deconvlint.__version__ == __version__
True
"""

__version__ = "0.1.0"
