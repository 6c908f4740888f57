"""Fuzzing: hostile edits of real models must give findings or a one-line error, nothing else.

The full runs are marked ``fuzz`` and left out of the default test run (they take minutes);
``.ci/run`` runs them as their own step, ``python -m pytest -m fuzz``: 10,000 structured
mutations (:mod:`tests.support.fuzz_mutations`) through the graph-level front end and the rules, and
2,000 byte-level truncations and flips through the file reader.  A small sample of each runs
in the default suite.  ``DECONVLINT_FUZZ_CASES`` overrides the structured count.

Every crash found on the way is a regression test in ``tests/frontends/onnx/test_hostile_onnx.py`` or the
front end's own tests.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from deconvlint.engine import check_graph, check_path
from deconvlint.errors import LoadError
from deconvlint.frontends.onnx.reader import graph_from_model
from tests.support.fuzz_mutations import _BASES, mutated_models

STRUCTURED_CASES = int(os.environ.get("DECONVLINT_FUZZ_CASES", "10000"))
BYTE_CASES = 2000
#: A single case taking longer than this is a hang (the whole run is ~25 ms a case).
CASE_LIMIT_SECONDS = 30


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"a single case took more than {CASE_LIMIT_SECONDS} s")


def _guarded(check):
    """Run ``check()`` under an alarm; a LoadError must be one non-empty line."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_LIMIT_SECONDS)
    try:
        return check()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check_structured(case, folder: Path) -> None:
    description, model = case
    try:
        _guarded(lambda: check_graph(graph_from_model(model, base_dir=folder)))
    except LoadError as exc:
        message = str(exc)
        assert message and "\n" not in message, f"{description}: {message!r}"
        assert "internal error" not in message, f"{description}: {message}"


def _settings(cases: int):
    return settings(
        max_examples=cases,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@_settings(150)
@given(mutated_models())
def test_structured_mutations_sample(folder: Path, case) -> None:
    _check_structured(case, folder)


@pytest.mark.fuzz
@_settings(STRUCTURED_CASES)
@given(mutated_models())
def test_structured_mutations(folder: Path, case) -> None:
    _check_structured(case, folder)


@st.composite
def mangled_bytes(draw) -> bytes:
    """A base model truncated at any offset and/or with a few bytes overwritten."""
    raw = bytearray(_BASES[draw(st.sampled_from(sorted(_BASES)))])
    for _ in range(draw(st.integers(0, 6))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return bytes(raw)


def _check_bytes(raw: bytes, folder: Path) -> None:
    path = folder / "model.onnx"
    path.write_bytes(raw)
    result = _guarded(lambda: check_path(path))
    if result.error is not None:
        assert result.error and "\n" not in result.error, result.error
        assert "internal error" not in result.error


@_settings(100)
@given(mangled_bytes())
def test_byte_mutations_sample(folder: Path, raw: bytes) -> None:
    _check_bytes(raw, folder)


@pytest.mark.fuzz
@_settings(BYTE_CASES)
@given(mangled_bytes())
def test_byte_mutations(folder: Path, raw: bytes) -> None:
    _check_bytes(raw, folder)


#: libFuzzer runs of the atheris harness in the fuzz step.
ATHERIS_RUNS = 3000


@pytest.mark.fuzz
def test_atheris_byte_fuzzing(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (it has no wheel here)")
    import subprocess
    import sys

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, raw in _BASES.items():
        (corpus / name).write_bytes(raw)
    harness = Path(__file__).parent / "support" / "fuzz_atheris.py"
    proc = subprocess.run(
        [sys.executable, str(harness), f"-runs={ATHERIS_RUNS}", "-max_len=16384", "-timeout=30",
         "-rss_limit_mb=4096", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    tail = "\n".join(proc.stderr.splitlines()[-30:])
    assert proc.returncode == 0, tail
    assert f"Done {ATHERIS_RUNS} runs" in proc.stderr, tail
