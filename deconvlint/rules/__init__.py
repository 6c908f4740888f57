"""The rules: the registry that runs them, the shared context and wording, one module per rule,
the catalogue (``rules/*.yaml`` at the top of the repository, shipped pre-parsed) and the
folding of findings that one mistake explains twice.
"""
