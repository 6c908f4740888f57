"""Configuration: finding and reading ``.deconvlint.yaml`` / ``pyproject.toml``, checking it
against the catalogue, and the resolved :class:`~deconvlint.config.settings.Settings`.
"""
