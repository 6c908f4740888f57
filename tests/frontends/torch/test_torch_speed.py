"""What the torch front end does to be fast must not change what it finds: one intra-op thread
while reading (restored after), source files parsed once per file (same lines as ``inspect``),
no GraphModule for shape propagation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from deconvlint.frontends.torch import names as torch_names  # noqa: E402
from deconvlint.frontends.torch.load import load_module  # noqa: E402
from tests.support.zoo import ZOO  # noqa: E402

pytestmark = pytest.mark.torch


class ThreadProbe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(2, 2, 3, stride=2)
        self.seen: list[int] = []

    def forward(self, x):
        self.seen.append(torch.get_num_threads())
        return self.up(x)


class Outer(nn.Module):
    class Inner(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = nn.ConvTranspose2d(2, 2, 3, stride=2)

        def forward(self, x):
            return self.up(x)

    def __init__(self) -> None:
        super().__init__()
        self.inner = Outer.Inner()
        self.blur = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.blur(self.inner(x))


def local_model() -> nn.Module:
    class Local(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = nn.Upsample(scale_factor=2)
            self.conv = nn.Conv2d(2, 2, 3)

        def forward(self, x):
            return self.conv(self.up(x))

    return Local()


def test_one_thread_while_reading_and_the_setting_restored() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = ThreadProbe()
        graph, _ = load_module(model, (torch.randn(1, 2, 4, 4),))
        assert model.seen and set(model.seen) == {1}
        assert torch.get_num_threads() == 2
        assert [n.name for n in graph.nodes] == ["up"]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "model", [Outer(), local_model(), ZOO["hifigan"].model()], ids=["nested", "local", "hifigan"]
)
def test_sources_from_the_parsed_file_match_inspect(
    model: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = (torch.randn(1, 2, 8, 8),) if not hasattr(model, "conv_pre") else ZOO["hifigan"].inputs()
    fast = {n.name: n.source for n in load_module(model, x)[0].nodes}
    torch_names._PARSED.clear()
    monkeypatch.setattr(torch_names, "_file_classes", lambda path: None)  # inspect only
    slow = {n.name: n.source for n in load_module(model, x)[0].nodes}
    assert fast == slow and all(fast.values())


def test_a_source_file_edited_since_is_parsed_again(tmp_path) -> None:
    module = tmp_path / "edited_model.py"
    text = "import torch.nn as nn\nclass M(nn.Module):\n    def __init__(self):\n"
    module.write_text(text + "        super().__init__()\n        self.up = nn.Upsample(2)\n")
    classes = torch_names._file_classes(str(module))
    assert classes is not None and classes["M"].lineno == 2
    module.write_text("\n\n" + text + "        pass\n")  # two lines down, another size
    assert torch_names._file_classes(str(module))["M"].lineno == 4
