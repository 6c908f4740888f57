"""Locations that point at the user's code (issue 16): a layer inside a container reports its
own constructor's line; a layer a library builds reports the user's call that built it (the
library's line kept beside it); ONNX from torch's dynamo exporter is named by module path; and
``.py`` findings carry numeric line/column in every format."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.cli import REPO
from tests.support.external_tools import sarif_multitool, validate_sarif


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(cwd)]))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


# --- layers inside containers ------------------------------------------------------------------

CONTAINERS_PY = """\
from collections import OrderedDict

import torch.nn as nn


def up(k=3):
    return nn.ConvTranspose2d(4, 4, k, stride=2, padding=1, output_padding=1)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(4, 4, 3, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(                                   # line 16
                4, 4, 3, stride=2, padding=1, output_padding=1
            ),
            nn.Sequential(
                nn.ReLU(),
                nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1),  # 21
            ),
        )
        self.blocks = nn.ModuleList([
            nn.Identity(),
            nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1),  # line 26
        ])
        layers = [
            nn.ReLU(),
            nn.ConvTranspose2d(4, 4, 5, stride=2, padding=2, output_padding=1),  # line 30
        ]
        self.spread = nn.Sequential(*layers)
        self.named = nn.Sequential(OrderedDict([
            ("act", nn.ReLU()),
            ("up", nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)),  # 35
        ]))
        self.made = nn.Sequential(*[up() for _ in range(1)])      # line 37: no literal

    def forward(self, x):
        return self.made(self.named(self.spread(self.blocks[1](self.body(x)))))
"""


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory):
    torch = pytest.importorskip("torch")
    import deconvlint

    folder = tmp_path_factory.mktemp("containers")
    path = folder / "containers_model.py"
    path.write_text(CONTAINERS_PY)
    model = _import(path).Decoder()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        report = deconvlint.check(model, torch.randn(1, 4, 4, 4), select=["DL001"])
    finally:
        os.chdir(cwd)
    return {f.node: f.source for f in report.findings}


@pytest.mark.torch
def test_layers_in_containers_point_at_their_own_constructor_call(containers: dict) -> None:
    assert containers["body.2"] == "containers_model.py:16"  # multi-line Sequential
    assert containers["body.3.1"] == "containers_model.py:21"  # nested Sequential
    assert containers["blocks.1"] == "containers_model.py:26"  # ModuleList([...])
    assert containers["spread.1"] == "containers_model.py:30"  # Sequential(*layers)
    assert containers["named.up"] == "containers_model.py:35"  # OrderedDict
    # built by a comprehension: no literal element, the container's line
    assert containers["made.0"] == "containers_model.py:37"


# --- layers a library builds -------------------------------------------------------------------

MONAI_USER_PY = """\
import torch
import torch.nn as nn
from monai.networks.nets import UNet

import deconvlint


class Segmenter(nn.Module):
    def __init__(self):
        super().__init__()
        self.unet = UNet(                                          # line 11
            spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8, 16), strides=(2, 2)
        )

    def forward(self, x):
        return self.unet(x)


def make_unet():
    return UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8, 16),  # 20
                strides=(2, 2))


if __name__ == "__main__":
    model = UNet(                                                  # line 25
        spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8, 16), strides=(2, 2)
    )
    report = deconvlint.check(model, torch.randn(1, 1, 32, 32), select=["DL001"])
    print(report.findings[0].source)
    print(report.findings[0].library_source)
"""


@pytest.fixture(scope="module")
def monai_user(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    folder = tmp_path_factory.mktemp("monai_user")
    (folder / "seg.py").write_text(MONAI_USER_PY)
    return folder


LIBRARY_LINE = "monai/networks/blocks/convolutions.py:"


@pytest.mark.optional
def test_monai_model_built_in_a_script_points_at_the_users_call(monai_user: Path) -> None:
    proc = run("seg.py", cwd=monai_user)
    assert proc.returncode == 0, proc.stderr
    source, library = proc.stdout.split()
    assert source == "seg.py:25"
    assert LIBRARY_LINE in library.replace(os.sep, "/") and "site-packages" in library


@pytest.mark.optional
def test_monai_model_inside_a_user_class_points_at_the_attribute(monai_user: Path) -> None:
    proc = run("-m", "deconvlint", "seg:Segmenter", "--input-shape", "1,1,32,32",
               "--select", "DL001", "--format", "json", cwd=monai_user)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    findings = json.loads(proc.stdout)["results"][0]["findings"]
    assert findings and {f["source"] for f in findings} == {"seg.py:11"}
    assert all(LIBRARY_LINE in f["library_source"].replace(os.sep, "/") for f in findings)
    assert findings[0]["location"] == {"row": 11} and findings[0]["filename"] == "seg.py"


@pytest.mark.optional
def test_monai_factory_target_points_at_its_call_in_every_format(monai_user: Path) -> None:
    target = (
        "-m",
        "deconvlint",
        "seg:make_unet",
        "--input-shape",
        "1,1,32,32",
        "--select",
        "DL001",
    )
    text = run(*target, cwd=monai_user)
    assert text.returncode == 1, text.stderr
    assert "defined at: seg.py:20" in text.stdout
    assert "built in the library at: " in text.stdout and LIBRARY_LINE in text.stdout.replace(
        os.sep, "/"
    )
    github = run(*target, "--format", "github", cwd=monai_user).stdout
    assert "file=seg.py,line=20," in github
    sarif = run(*target, "--format", "sarif", cwd=monai_user)
    result = json.loads(sarif.stdout)["runs"][0]["results"][0]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "seg.py"
    assert physical["region"] == {"startLine": 20}
    related = result["relatedLocations"][0]["physicalLocation"]
    assert related["artifactLocation"]["uri"].endswith("monai/networks/blocks/convolutions.py")
    tool = sarif_multitool()
    if tool is not None:
        path = monai_user / "unet.sarif"
        path.write_text(sarif.stdout)
        assert validate_sarif(tool, path) == []


@pytest.mark.optional
def test_monai_model_without_user_code_keeps_the_library_line_once(monai_user: Path) -> None:
    """Built where no file can be read (``python -c``): the library's line, not twice."""
    code = (
        "import torch, deconvlint\n"
        "from monai.networks.nets import UNet\n"
        "m = UNet(2, 1, 1, (4, 8, 16), (2, 2))\n"
        "f = deconvlint.check(m, torch.randn(1, 1, 32, 32), select=['DL001']).findings[0]\n"
        "print(f.source, f.library_source)"
    )
    proc = run("-c", code, cwd=monai_user)
    assert proc.returncode == 0, proc.stderr
    source, library = proc.stdout.split()
    assert LIBRARY_LINE in source.replace(os.sep, "/") and library == "None"


# --- ONNX from torch's dynamo exporter -----------------------------------------------------------

DYNAMO_PY = """\
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return self.conv(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Sequential(Block()))

    def forward(self, x):
        return torch.tanh(self.model(x))


torch.onnx.export(Net().eval(), (torch.randn(1, 4, 8, 8),), "net.onnx", dynamo=True)
"""


@pytest.mark.slow
@pytest.mark.torch
def test_dynamo_export_is_named_by_module_path(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    import onnx

    (tmp_path / "export.py").write_text(DYNAMO_PY)
    made = run("export.py", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    model = onnx.load(str(tmp_path / "net.onnx"))
    assert {n.name for n in model.graph.node if n.op_type == "ConvTranspose"} != {"model.1.0.conv"}
    proc = run(
        "-m", "deconvlint", "net.onnx", "--select", "DL001", "--format", "json", cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stderr
    nodes = [f["node"] for f in json.loads(proc.stdout)["results"][0]["findings"]]
    assert nodes == ["model.1.0.conv"]


def _tagged(scopes: str | None, namespace: str | None = None):
    import onnx
    from onnx import TensorProto, helper

    from tests.support.onnx_factory import tensor

    node = helper.make_node(
        "ConvTranspose", ["x", "w"], ["y"], name="node_convolution_1",
        strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1],
    )  # fmt: skip
    props = {}
    if scopes is not None:
        props["pkg.torch.onnx.name_scopes"] = scopes
    if namespace is not None:
        props["namespace"] = namespace
    helper.set_metadata_props(node, props)
    import numpy as np

    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [tensor("w", np.ones((2, 2, 3, 3)))],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 10
    return onnx.load_from_string(model.SerializeToString())


@pytest.mark.parametrize(
    ("scopes", "namespace", "expected"),
    [
        ("['', 'model', 'model.1', 'model.1.submodule.conv', 'convolution']", None,
         "model.1.submodule.conv"),
        (None, ": pkg.Net/up: torch.nn.Sequential/up.0: torch.nn.ConvTranspose2d/convolution: "
         "aten.convolution.default", "up.0"),
        # hostile metadata: not a dotted name, too long, nothing usable -> the node's own name
        ("['', 'a\\nb', 'x']", None, "node_convolution_1"),
        ("['', '" + "a" * 5000 + "', 'x']", None, "node_convolution_1"),
        ("['', '\\x1b[31mred', 'x']", None, "node_convolution_1"),
        ("['', 'convolution']", None, "node_convolution_1"),
    ],
)  # fmt: skip
def test_name_scopes_metadata_names_the_node(scopes, namespace, expected) -> None:
    from deconvlint.config.settings import Settings
    from deconvlint.frontends.onnx.reader import graph_from_model
    from deconvlint.rules.registry import run_rules

    graph = graph_from_model(_tagged(scopes, namespace))
    assert [f.node for f in run_rules(graph, Settings(select=("DL001",)))] == [expected]


# --- .py source findings: numeric locations in every format ------------------------------------

SOURCE_PY = textwrap.dedent("""\
    import torch.nn as nn


    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose2d(
                8, 4, 3, stride=2, padding=1, output_padding=1
            )
""")


def test_source_findings_have_line_and_column_in_every_format(tmp_path: Path) -> None:
    (tmp_path / "dec.py").write_text(SOURCE_PY)
    as_json = json.loads(run("-m", "deconvlint", "dec.py", "--format", "json", cwd=tmp_path).stdout)
    finding = as_json["results"][0]["findings"][0]
    assert finding["node"] == "7:19"
    assert finding["filename"] == "dec.py"
    assert finding["location"] == {"row": 7, "column": 19}
    assert finding["end_location"] == {"row": 9, "column": 10}
    sarif = run("-m", "deconvlint", "dec.py", "--format", "sarif", cwd=tmp_path).stdout
    region = json.loads(sarif)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert region["region"] == {"startLine": 7, "startColumn": 19, "endLine": 9, "endColumn": 10}
    github = run("-m", "deconvlint", "dec.py", "--format", "github", cwd=tmp_path).stdout
    assert "::warning file=dec.py,line=7,col=19,endLine=9,endColumn=10,title=DL001" in github
    tool = sarif_multitool()
    if tool is not None:
        (tmp_path / "dec.sarif").write_text(sarif)
        assert validate_sarif(tool, tmp_path / "dec.sarif") == []
