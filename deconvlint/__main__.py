"""``python -m deconvlint``: the same command as ``deconvlint``."""

from deconvlint.cli.main import console_main

if __name__ == "__main__":
    raise SystemExit(console_main())
