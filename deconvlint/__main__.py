"""``python -m deconvlint``: the same command as ``deconvlint``."""

from deconvlint.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
