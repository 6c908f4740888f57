"""The command line: arguments and exit codes (``main``), which files to check
(``discovery``), and checking many files at once (``parallel``).
"""
