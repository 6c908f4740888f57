"""Coverage-guided byte fuzzing of the ONNX file reader and front end with atheris (libFuzzer).

    python tests/support/fuzz_atheris.py -runs=3000 CORPUS_DIR

Every input is written to a file and checked with :func:`deconvlint.engine.check_path`: the
result must be findings or a one-line error; any exception is a crash that libFuzzer reports
(with the input saved as ``crash-*``).  ``tests/test_fuzz.py`` runs it, seeded with the models
of :mod:`tests.support.fuzz_mutations`, when atheris is installed.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["deconvlint"]):
    import importlib
    import pkgutil

    import deconvlint
    from deconvlint.engine import check_path

    # the front end and the rules are imported lazily: import them here to instrument them
    for module in pkgutil.walk_packages(deconvlint.__path__, "deconvlint."):
        if "torch" not in module.name and module.name not in ("deconvlint.__main__",):
            importlib.import_module(module.name)

_FOLDER = tempfile.mkdtemp(prefix="deconvlint-atheris-")
_PATH = os.path.join(_FOLDER, "model.onnx")


def test_one_input(data: bytes) -> None:
    with open(_PATH, "wb") as file:
        file.write(data)
    result = check_path(_PATH)
    error = result.error
    if error is not None and (not error or "\n" in error or "internal error" in error):
        raise AssertionError(f"bad error line: {error!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
