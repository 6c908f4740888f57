"""Keras files through the product: the command line (every output format, exit codes,
folders, --probe), the Python API and the pre-commit hook, as users run them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import deconvlint
from deconvlint.errors import DeconvlintError
from tests.support.cli import REPO, cli_env, run_cli
from tests.support.keras_files import keras_files

pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return keras_files(tmp_path_factory.getbasetemp() / "keras_files")


def _cli(*args: str, cwd: Path | None = None, prelude: str = "", **env: str):
    if not prelude:
        return run_cli(*args, cwd=cwd, env=cli_env(**env), timeout=300)
    code = f"import sys\n{prelude}\nfrom deconvlint.__main__ import main\nsys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(**env),
        timeout=300,
    )


def _findings(proc: subprocess.CompletedProcess) -> list[tuple[str, str]]:
    [result] = json.loads(proc.stdout)["results"]
    return [(f["node"], f["rule"]) for f in result["findings"]]


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_the_cli_checks_a_keras_file(files, suffix: str) -> None:
    path = files["sequential"].with_suffix(suffix)
    proc = _cli("--format", "json", str(path))
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["results"][0]["path"] == str(path) and report["results"][0]["error"] is None
    assert _findings(proc) == [("up1", "DL001"), ("up2", "DL001"), ("up2", "DL003")]
    text = _cli(str(path))
    assert text.returncode == 1 and text.stderr == ""
    assert text.stdout.startswith(f"{path}:up1: DL001 [warning] uneven overlap")


def test_every_output_format_names_the_keras_layers(files, tmp_path: Path) -> None:
    path = files["nested"]
    sarif = _cli("--format", "sarif", str(path))
    assert sarif.returncode == 0, sarif.stderr  # the only finding is info (compensated)
    [run] = json.loads(sarif.stdout)["runs"]
    assert [r["ruleId"] for r in run["results"]] == ["DL001"]
    assert "middle/inner/ct" in run["results"][0]["message"]["text"]
    github = _cli("--format", "github", "--fail-on", "info", str(path))
    assert github.returncode == 1 and "middle/inner/ct" in github.stdout
    html = _cli("--format", "html", "--output", str(tmp_path / "r.html"), str(path))
    assert html.returncode == 0 and "middle/inner/ct" in (tmp_path / "r.html").read_text()
    stats = _cli("--statistics", str(files["sequential"]))
    assert stats.returncode == 1 and "DL001" in stats.stdout


def test_a_folder_stands_for_its_keras_archives_but_not_its_h5_files(files, tmp_path: Path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "gen.keras").write_bytes(files["sequential"].read_bytes())
    (folder / "gen.h5").write_bytes(files["sequential"].with_suffix(".h5").read_bytes())
    (folder / "broken.keras").write_bytes(b"PK not really")
    proc = _cli("--format", "json", str(folder))
    assert proc.returncode == 2
    results = {Path(r["path"]).name: r for r in json.loads(proc.stdout)["results"]}
    assert sorted(results) == ["broken.keras", "gen.keras"]
    assert results["broken.keras"]["error"].startswith("not a Keras archive")
    assert [f["node"] for f in results["gen.keras"]["findings"]] == ["up1", "up2", "up2"]
    only_h5 = tmp_path / "data"
    only_h5.mkdir()
    (only_h5 / "gen.h5").write_bytes(files["sequential"].with_suffix(".h5").read_bytes())
    proc = _cli(str(only_h5))
    assert proc.returncode == 2 and "no ONNX models (*.onnx), Keras models (*.keras)" in proc.stderr


def test_a_bad_keras_file_is_one_error_line(files, tmp_path: Path) -> None:
    cut = tmp_path / "cut.keras"
    cut.write_bytes(files["sequential"].read_bytes()[:3000])
    weights = tmp_path / "gen.weights.h5"
    with h5py.File(weights, "w") as h5:
        h5.create_group("layers")
    for path, cause in (
        (cut, "not a Keras archive: not a zip file, or a truncated or damaged one"),
        (weights, "a Keras weights file (model.save_weights('x.weights.h5')), not a model"),
    ):
        proc = _cli(str(path))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"{path}: error: {cause}"), line


def test_the_probe_says_once_that_a_keras_file_is_not_run(files) -> None:
    proc = _cli("--probe", str(files["sequential"]))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"{files['sequential']}: error: --probe runs models with onnxruntime or torch, and a Keras "
        "file runs only in Keras, which deconvlint does not import; export it to ONNX "
        "(model.export('model.onnx', format='onnx')) and probe that file"
    ]


def test_the_python_api_checks_keras_files(files) -> None:
    for suffix in (".keras", ".h5"):
        report = deconvlint.check(str(files["sequential"].with_suffix(suffix)))
        assert report.frontend == "keras"
        assert [(f.node, f.rule) for f in report.findings] == [
            ("up1", "DL001"),
            ("up2", "DL001"),
            ("up2", "DL003"),
        ]
    with pytest.raises(
        DeconvlintError, match=r"^probe=True needs an nn\.Module or ONNX, not a Keras"
    ):
        deconvlint.check(str(files["sequential"]), probe=True)


def test_weight_rules_read_keras_weights_and_say_when_h5py_is_missing(files) -> None:
    path = str(files["sequential"])
    proc = _cli("--select", "DL007", "--format", "json", path)
    assert proc.returncode == 1, proc.stderr  # random initial weights: a checkerboard
    assert {node for node, rule in _findings(proc)} == {"up1", "up2"}
    without = _cli(
        "--select", "DL007", "--format", "json", path, prelude="sys.modules['h5py'] = None"
    )
    assert without.returncode == 0, without.stderr
    [result] = json.loads(without.stdout)["results"]
    assert result["findings"] == []
    assert result["notes"] == [
        "weights not read: h5py is not installed (pip install 'deconvlint[keras]'); the checks "
        "that need weights (weight-aware rules, fixed filters) skip every layer"
    ]
    text = _cli("--select", "DL007", path, prelude="sys.modules['h5py'] = None")
    assert "note: weights not read: h5py is not installed" in text.stdout


def test_checking_keras_files_imports_neither_keras_tensorflow_jax_nor_torch(files) -> None:
    """Nor h5py: the HDF5 reads (a legacy .h5's configuration, DL007's weights) run in the
    forked worker.  ``-j 1``: every file is checked in this process, whose modules are listed."""
    code = (
        "import sys\nfrom deconvlint.cli.main import main\n"
        "frameworks = {'keras', 'tensorflow', 'jax', 'jaxlib', 'torch', 'tf_keras', 'h5py'}\n"
        "code = main(['-j', '1', '--extend-select', 'DL007', *sys.argv[1:]])\n"
        "print('MODULES', sorted({m.split('.')[0] for m in sys.modules} & frameworks))\n"
        "raise SystemExit(code)\n"
    )
    paths = [str(files[n].with_suffix(s)) for n in ("lambda", "nested") for s in (".keras", ".h5")]
    proc = subprocess.run(
        [sys.executable, "-c", code, *paths],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_env(),
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("MODULES")] == [
        "MODULES []"
    ]
    dl007 = {line.split(":")[1] for line in proc.stdout.splitlines() if " DL007 " in line}
    assert {"up_a", "up_b"} <= dl007, proc.stdout  # the weights were read (random: uneven)


def test_a_lambda_layers_code_never_runs(files, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for suffix in (".keras", ".h5"):
        path = files["lambda"].with_suffix(suffix)
        proc = _cli("--extend-select", "DL007", str(path), DECONVLINT_MARKER=str(marker))
        assert proc.returncode == 1, proc.stderr
        assert "Lambda layer 'scale'" in proc.stdout
    assert not marker.exists()


def test_the_pre_commit_hook_takes_keras_archives_but_not_h5_files() -> None:
    hooks = (REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    pattern = re.search(r"^  files: (.+)$", hooks, flags=re.M).group(1)
    assert [bool(re.search(pattern, n)) for n in ("a.keras", "a.onnx", "a.py", "a.h5")] == [
        True,
        True,
        True,
        False,
    ]


def test_the_keras_example_is_deterministic_and_small(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "make_keras_example.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        env=cli_env(KERAS_BACKEND="torch"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    fresh = (tmp_path / "dcgan_generator.keras").read_bytes()
    assert len(fresh) < 200_000
    assert fresh == (REPO / "examples" / "dcgan_generator.keras").read_bytes(), (
        "examples/dcgan_generator.keras is stale: run python examples/make_keras_example.py"
    )
