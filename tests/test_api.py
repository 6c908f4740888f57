"""The Python API: ``deconvlint.check``, ``assert_clean``, ``DeconvLintWarning``, ``print(report)``.

The ONNX tests run on the shipped ``examples/`` and need no torch.  The torch tests build small
modules; those about the API's own handling of a module (input tuples, timeout, the path shown)
use a stand-in torch front end, so that they test this layer and not the tracer.
"""

from __future__ import annotations

import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

import deconvlint
from deconvlint.api import DeconvLintWarning, warning_message
from deconvlint.config.settings import Settings
from deconvlint.errors import ConfigError, LoadError, TraceError
from deconvlint.formatters.text import format_report
from deconvlint.report import Report
from tests.support.cli import REPO

GOLDEN = Path(__file__).resolve().parent / "golden"
CYCLEGAN = "examples/cyclegan_decoder.onnx"  # 2 DL001, DL003, DL004: all warnings
STYLEGAN = "examples/stylegan_blur.onnx"  # one DL001 info
CLEAN = "examples/clean_decoder.onnx"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    # Paths as the golden files show them; the repo's pyproject has no [tool.deconvlint].
    monkeypatch.chdir(REPO)


def _rules(report: Report) -> list[tuple[str, str, str]]:
    return [(f.node, f.rule, f.severity) for f in report.findings]


# --- import cost --------------------------------------------------------------------------------


def test_import_deconvlint_imports_neither_torch_nor_onnx() -> None:
    code = (
        "import sys, deconvlint\n"
        "assert 'deconvlint.api' not in sys.modules, 'the API is loaded on first use'\n"
        "deconvlint.DeconvLintWarning, deconvlint.check, deconvlint.assert_clean\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx'))\n"
        "print(heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"import deconvlint pulled in: {proc.stdout}"


def test_import_deconvlint_loads_only_importlib() -> None:
    """The CLI pauses the cyclic collector once the package is imported (its start-up allocates
    much and frees little): the package itself loads nothing more than importlib (typing, with
    re, enum and collections, took seven collections there)."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import deconvlint\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] not in "
        "('deconvlint', 'importlib', 'warnings')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"import deconvlint pulled in: {proc.stdout}"


def test_public_names() -> None:
    assert {"check", "assert_clean", "DeconvLintWarning", "Report"} <= set(dir(deconvlint))
    assert deconvlint.DeconvLintWarning is DeconvLintWarning
    assert issubclass(DeconvLintWarning, UserWarning)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        deconvlint.nonsense  # noqa: B018


# --- ONNX targets and the text report -------------------------------------------------------------


@pytest.mark.parametrize("name", ["cyclegan_decoder", "stylegan_blur", "clean_decoder"])
def test_print_report_is_the_cli_text(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = deconvlint.check(f"examples/{name}.onnx")
    print(report)
    assert capsys.readouterr().out == (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    assert str(report) + "\n" == format_report(report)


def test_onnx_path_report() -> None:
    report = deconvlint.check(Path(CYCLEGAN))
    assert report.frontend == "onnx"
    assert report.results[0].path == CYCLEGAN
    assert _rules(report) == [
        ("decoder.up1", "DL001", "warning"),
        ("decoder.up2", "DL001", "warning"),
        ("decoder.up2", "DL003", "warning"),  # carries the output's metrics: no DL004
    ]


def test_to_dict_keeps_its_keys_and_adds_the_frontend() -> None:
    report = deconvlint.check(CYCLEGAN)
    data = report.to_dict()
    assert data.pop("frontend") == "onnx"
    assert data == Report(report.results).to_dict()
    assert list(data) == ["deconvlint", "results", "summary"]


def test_model_proto_target() -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(CYCLEGAN)
    by_path, by_proto = deconvlint.check(CYCLEGAN), deconvlint.check(model)
    assert by_proto.frontend == "onnx"
    assert by_proto.results[0].path == f"<{model.graph.name}>"
    assert [f.to_dict() for f in by_proto.findings] == [f.to_dict() for f in by_path.findings]


def test_clean_report_text() -> None:
    assert str(deconvlint.check(CLEAN)) == "All checks passed (1 file)."


# --- errors are exceptions ----------------------------------------------------------------------


def test_missing_file_raises_load_error() -> None:
    with pytest.raises(LoadError, match="file not found"):
        deconvlint.check("no/such/model.onnx")


def test_not_onnx_raises_load_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"\x00\x01not a protobuf at all" * 10)
    with pytest.raises(LoadError, match="not an ONNX model"):
        deconvlint.check(bogus)


def test_unsupported_target_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not int"):
        deconvlint.check(42)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"select": "DL9"}, "select: unknown rule or prefix 'DL9'"),
        ({"ignore": ["DL001", "XX"]}, "ignore: unknown rule or prefix 'XX'"),
        ({"extend_select": 7}, "extend_select: expected a list of rule ids"),
        ({"fail_on": "fatal"}, "fail_on: expected one of info, warning, error, got 'fatal'"),
        ({"config": "no/such/.deconvlint.yaml"}, "no such configuration file"),
    ],
)
def test_wrong_settings_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        deconvlint.check(CYCLEGAN, **kwargs)


# --- settings: configuration file, then keywords ------------------------------------------------


def test_selection_keywords() -> None:
    assert {f.rule for f in deconvlint.check(CYCLEGAN, select="DL001").findings} == {"DL001"}
    only = deconvlint.check(CYCLEGAN, select=["DL00"], ignore="DL001,DL003,DL007").findings
    assert {f.rule for f in only} == {"DL004"}
    extended = deconvlint.check(CYCLEGAN, select="DL004", extend_select=["DL003"]).findings
    assert {f.rule for f in extended} == {"DL003"}  # the stack explains the output


def test_discovered_config_then_keywords_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = str(REPO / CYCLEGAN)
    (tmp_path / ".deconvlint.yaml").write_text("ignore: [DL004]\nfail-on: info\n")
    sub = tmp_path / "deeper"
    sub.mkdir()
    monkeypatch.chdir(sub)  # found upwards, as the CLI finds it
    assert "DL004" not in {f.rule for f in deconvlint.check(model).findings}
    # select starts over, so DL004 runs although the file ignores it
    assert {f.rule for f in deconvlint.check(model, select="DL004").findings} == {"DL004"}
    # the file's fail-on makes the info finding fail; the keyword wins over it
    blur = str(REPO / STYLEGAN)
    with pytest.raises(AssertionError):
        deconvlint.assert_clean(blur)
    deconvlint.assert_clean(blur, fail_on="warning")


def test_config_path_and_settings(tmp_path: Path) -> None:
    config = tmp_path / "lint.toml"
    config.write_text('ignore = ["DL001", "DL003"]\n')
    assert {f.rule for f in deconvlint.check(CYCLEGAN, config=config).findings} == {"DL004"}
    settings = Settings(select=("DL001",))
    assert {f.rule for f in deconvlint.check(CYCLEGAN, config=settings).findings} == {"DL001"}
    # keywords are layered on a Settings too: an ignore there does not survive a select
    ignoring = Settings(ignore=("DL004",))
    assert {f.rule for f in deconvlint.check(CYCLEGAN, config=ignoring).findings} == {
        "DL001",
        "DL003",
    }
    assert {
        f.rule for f in deconvlint.check(CYCLEGAN, config=ignoring, select="DL004").findings
    } == {"DL004"}


def test_config_per_node_ignores_and_options_apply(tmp_path: Path) -> None:
    config = tmp_path / ".deconvlint.yaml"
    config.write_text('per-node-ignores:\n  "decoder.up1": [DL001]\nDL004: {max-cv: 0.2}\n')
    report = deconvlint.check(CYCLEGAN, config=config)
    assert _rules(report) == [
        ("decoder.up2", "DL001", "warning"),
        ("decoder.up2", "DL003", "warning"),
    ]


def test_two_config_files_in_one_folder_warn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".deconvlint.yaml").write_text("ignore: [DL006]\n")
    (tmp_path / "pyproject.toml").write_text("[tool.deconvlint]\nignore = ['DL005']\n")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"\[tool.deconvlint\] is ignored") as caught:
        deconvlint.check(str(REPO / CLEAN))
    assert caught[0].filename == __file__


# --- warnings -----------------------------------------------------------------------------------


def test_warn_issues_one_warning_per_finding() -> None:
    with pytest.warns(DeconvLintWarning) as caught:
        report = deconvlint.check(CYCLEGAN, warn=True)
    assert len(caught) == len(report.findings) == 3
    for record, finding in zip(caught, report.findings, strict=True):
        assert record.message.finding is finding
        assert str(record.message) == (
            f"{finding.node}: {finding.rule} [{finding.severity}] {finding.message}"
        )
        assert record.filename == __file__, "the warning points at the caller of check()"
    assert str(caught[0].message).startswith("decoder.up1: DL001 [warning] uneven overlap")


def test_warnings_are_filterable() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", DeconvLintWarning)
        deconvlint.check(CYCLEGAN, warn=True)
    assert caught == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeconvLintWarning)
        with pytest.raises(DeconvLintWarning, match=r"decoder\.up1: DL001") as raised:
            deconvlint.check(CYCLEGAN, warn=True)
    assert raised.value.finding.node == "decoder.up1"


def test_no_warnings_by_default() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deconvlint.check(CYCLEGAN)


def test_warning_message_format() -> None:
    report = deconvlint.check(STYLEGAN)
    (finding,) = report.findings
    assert warning_message(finding).startswith("synthesis.up: DL001 [info] uneven overlap")


# --- assert_clean -------------------------------------------------------------------------------


def test_assert_clean_lists_the_failing_findings() -> None:
    with pytest.raises(AssertionError) as raised:
        deconvlint.assert_clean(CYCLEGAN)
    text = str(raised.value)
    lines = text.splitlines()
    assert lines[0] == "deconvlint: 3 findings at or above 'warning'"
    assert lines[1].startswith(f"{CYCLEGAN}:decoder.up1: DL001 [warning] uneven overlap")
    assert "suggestion: ConvTranspose2d(k=4, s=2, p=1)" in text
    assert lines[-1] == "Found 3 findings (3 warnings) in 1 file."


def test_assert_clean_threshold() -> None:
    report = deconvlint.assert_clean(STYLEGAN)  # only an info finding
    assert isinstance(report, Report)
    assert [f.severity for f in report.findings] == ["info"]
    with pytest.raises(AssertionError, match=r"1 finding at or above 'info'\n.*DL001 \[info\]"):
        deconvlint.assert_clean(STYLEGAN, fail_on="info")


def test_assert_clean_passes_below_threshold() -> None:
    assert deconvlint.assert_clean(CYCLEGAN, fail_on="error").findings
    assert deconvlint.assert_clean(CLEAN).findings == []


# --- torch targets --------------------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def fake_torch_front_end(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Stands in for deconvlint.frontends.torch.load: records its calls, returns a chain graph."""
    from deconvlint.core.chainspec import parse_chain
    from deconvlint.core.ir import Graph

    calls: list[dict] = []

    def graph() -> Graph:
        nodes = parse_chain("ConvTranspose2d(k=3, s=2, p=1, op=1)")
        return Graph("fake", nodes, (nodes[0].inputs[0],), (nodes[-1].outputs[0],))

    def load_module(model, example_inputs=None, *, timeout=None):
        calls.append({"model": model, "example_inputs": example_inputs, "timeout": timeout})
        return graph(), "hooks"

    def graph_from_exported(ep):
        calls.append({"exported": ep})
        return graph()

    fake = types.ModuleType("deconvlint.frontends.torch.load")
    fake.load_module = load_module
    fake.graph_from_exported = graph_from_exported
    monkeypatch.setitem(sys.modules, "deconvlint.frontends.torch.load", fake)
    import deconvlint.frontends.torch

    monkeypatch.setattr(deconvlint.frontends.torch, "load", fake, raising=False)
    return calls


@pytest.mark.torch
def test_module_contract_with_a_stand_in_front_end(torch, fake_torch_front_end) -> None:
    class Generator(torch.nn.Module):
        def forward(self, x):
            return x

    x = torch.zeros(1, 2, 4, 4)
    report = deconvlint.check(Generator(), x, timeout=7.5)
    assert report.frontend == "hooks"
    assert report.results[0].path == "<Generator>"
    assert str(report).startswith("<Generator>:layer0: DL001 [warning]")
    (call,) = fake_torch_front_end
    assert call["example_inputs"] == (x,) and call["timeout"] == 7.5
    deconvlint.check(Generator(), [x, x])
    deconvlint.check(Generator())
    assert fake_torch_front_end[1]["example_inputs"] == (x, x)
    assert fake_torch_front_end[2]["example_inputs"] is None


class _Up:
    """A module built on demand (torch is optional)."""

    @staticmethod
    def build(torch, kernel: int = 3):
        class Decoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.up = torch.nn.ConvTranspose2d(
                    4, 2, kernel, stride=2, padding=1, output_padding=kernel % 2
                )

            def forward(self, x):
                return torch.tanh(self.up(x))

        return Decoder().eval()


@pytest.mark.torch
def test_module_target(torch) -> None:
    model = _Up.build(torch)
    report = deconvlint.check(model, example_inputs=(torch.randn(1, 4, 8, 8),))
    assert report.frontend in ("fx", "export", "hooks")
    assert report.results[0].path == "<Decoder>"
    assert next((f.node, f.rule) for f in report.findings) == ("up", "DL001")
    assert str(report).startswith("<Decoder>:up: DL001 [warning] uneven overlap")
    clean = _Up.build(torch, kernel=4)
    assert deconvlint.assert_clean(clean, torch.randn(1, 4, 8, 8)).findings == []


@pytest.mark.torch
def test_exported_program_target(torch) -> None:
    model = _Up.build(torch)
    inputs = (torch.randn(1, 4, 8, 8),)
    report = deconvlint.check(torch.export.export(model, inputs))
    assert report.frontend == "export"
    assert report.results[0].path == "<ExportedProgram>"
    by_module = deconvlint.check(model, inputs)
    assert [(f.rule, f.severity, f.metrics.get("pattern")) for f in report.findings] == [
        (f.rule, f.severity, f.metrics.get("pattern")) for f in by_module.findings
    ]


@pytest.mark.torch
def test_untraceable_module_raises_trace_error(torch) -> None:
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("this model cannot run")

    with pytest.raises(TraceError):
        deconvlint.check(Broken(), example_inputs=(torch.randn(1, 1, 4, 4),))


@pytest.mark.torch
def test_module_warnings_and_assert_clean(torch) -> None:
    model = _Up.build(torch)
    x = torch.randn(1, 4, 8, 8)
    with pytest.warns(DeconvLintWarning, match=r"^up: DL001 \[warning\]"):
        deconvlint.check(model, x, warn=True)
    with pytest.raises(AssertionError, match=r"<Decoder>:up: DL001 \[warning\]"):
        deconvlint.assert_clean(model, x)
