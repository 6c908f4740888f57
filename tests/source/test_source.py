"""Source mode: reading upsampling calls from Python source, the rules on them, and suppressions.

The CLI side (``--fix``, ``--diff``, folders, syntax errors, pre-commit) is in
``tests/source/test_source_cli.py``.
"""

from __future__ import annotations

import textwrap

import pytest

from deconvlint.config.settings import Settings
from deconvlint.core.chainspec import parse_chain
from deconvlint.core.ir import Graph
from deconvlint.engine import check_graph
from deconvlint.source.calls import find_calls
from deconvlint.source.check import check_text, suppressions
from deconvlint.source.rewrite import SourceEditor


def check(code: str, **settings):
    return check_text(textwrap.dedent(code), Settings(**settings))


def rules(code: str) -> list[tuple[str, str]]:
    return [(f.node, f.rule) for f in check(code).findings]


# --- finding the calls ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "import torch.nn as nn\nnn.ConvTranspose2d(c, c // 2, 3, 2, 1, 1)",
        "from torch import nn\nnn.ConvTranspose2d(c, c, kernel_size=3, stride=2, padding=1, output_padding=1)",
        "import torch\ntorch.nn.ConvTranspose2d(in_channels=c, out_channels=d, "
        "kernel_size=(3, 3), stride=2, padding=1, output_padding=1)",
        "from torch.nn import ConvTranspose2d as CT\nCT(4, 2, 3, stride=(2, 2), padding=1, output_padding=(1, 1))",
        "nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)  # conventional nn",
    ],
)
def test_conv_transpose_spellings_are_read(code: str) -> None:
    (call,), skipped = find_calls(code)
    assert skipped == 0
    assert call.cls == "ConvTranspose2d" and call.line == code.count("\n") + 1
    assert [f.rule for f in check_text(code).findings] == ["DL001"]


def test_calls_of_other_libraries_and_non_literal_geometry() -> None:
    code = textwrap.dedent(
        """
        import mylib
        from torch import nn
        K = 3
        mylib.ConvTranspose2d(4, 2, 3, 2)         # not torch
        nn.ConvTranspose2d(4, 2, K, 2)            # kernel not literal
        nn.ConvTranspose2d(4, 2, 3, **kw)         # kwargs
        nn.ConvTranspose2d(*args)                 # starred
        nn.Upsample(size=(10, 10))                # scale depends on the input
        nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        """
    )
    calls, skipped = find_calls(code)
    assert [c.line for c in calls] == [10] and skipped == 4
    outcome = check_text(code)
    assert (outcome.checked, outcome.skipped) == (1, 4)
    assert [f.node for f in outcome.findings] == ["10:1"]


def test_column_counts_characters_not_bytes() -> None:
    code = 'é = "ü"; up = nn.ConvTranspose1d(2, 2, 3, stride=2)\n'
    (finding, *_) = check_text(code).findings
    assert finding.node == f"1:{code.index('nn.') + 1}"


# --- same numbers and messages as the other front ends ---------------------------------------


@pytest.mark.parametrize(
    ("code", "spec"),
    [
        (
            "nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)",
            "ConvTranspose2d(k=3, s=2, p=1, op=1)",
        ),
        ("nn.ConvTranspose1d(8, 4, 1, stride=2)", "ConvTranspose1d(k=1, s=2)"),
        (
            "nn.ConvTranspose3d(8, 4, kernel_size=(3, 2, 5), stride=(2, 2, 3), dilation=2)",
            "ConvTranspose3d(k=(3, 2, 5), s=(2, 2, 3), d=2)",
        ),
        ("nn.Upsample(scale_factor=(1.5, 1.5))", "Upsample(scale=3/2, mode=nearest)"),
    ],
)
def test_messages_match_the_graph_path(code: str, spec: str) -> None:
    nodes = parse_chain(spec)
    graph = Graph("g", nodes, (nodes[0].inputs[0],), (nodes[-1].outputs[0],))
    # source mode has no graph output: DL004 is not checked (nor folded into a layer's finding)
    no_output = Settings(ignore=("DL004",))
    expected = [(f.rule, f.message, f.metrics) for f in check_graph(graph, no_output)]
    found = [(f.rule, f.message, f.metrics) for f in check_text(code).findings]
    assert found == expected


def test_clean_layers_give_nothing() -> None:
    assert (
        rules(
            """
            import torch.nn as nn
            import torch.nn.functional as F
            a = nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1)
            b = nn.ConvTranspose2d(64, 32, 2, 2)
            c = nn.Upsample(scale_factor=2, mode="nearest")
            d = F.interpolate(x, scale_factor=1.5, mode="bilinear")
            """
        )
        == []
    )


# --- chains -------------------------------------------------------------------------------


def test_sequential_literal_gets_the_stacked_rule() -> None:
    found = rules(
        """
        import torch.nn as nn
        up = nn.Sequential(
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(True),
            nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1),
        )
        """
    )
    assert found == [("4:5", "DL001"), ("7:5", "DL001"), ("7:5", "DL003")]


def test_unknown_module_in_a_sequential_breaks_the_stack() -> None:
    found = rules(
        """
        import torch.nn as nn
        up = nn.Sequential(
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),
            MyAttention(8),
            nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1),
        )
        """
    )
    assert found == [("4:5", "DL001"), ("6:5", "DL001")]


def test_blur_conv_in_the_sequential_compensates_like_stylegan() -> None:
    # ConvTranspose k3 s2 then a 2-tap conv: [1, 2] * [1, 1] is uniform again
    (finding,) = check(
        """
        up = nn.Sequential(
            nn.ConvTranspose1d(4, 4, 3, stride=2),
            nn.Conv1d(4, 4, 2),
        )
        """
    ).findings
    assert (finding.rule, finding.severity) == ("DL001", "info")
    assert "compensated downstream by '4:5'" in finding.message


def test_layers_appended_in_a_loop_get_the_single_layer_rules() -> None:
    found = rules(
        """
        model = []
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2),
                                         kernel_size=3, stride=2,
                                         padding=1, output_padding=1,
                                         bias=use_bias),
                      norm_layer(int(ngf * mult / 2)),
                      nn.ReLU(True)]
        model = nn.Sequential(*model)
        """
    )
    assert found == [("5:15", "DL001")]


# --- resizes ------------------------------------------------------------------------------


def test_fractional_nearest_resizes() -> None:
    outcome = check(
        """
        import torch.nn.functional as F
        from torch import nn
        a = F.interpolate(x, scale_factor=1.5)
        b = F.interpolate(x, None, 2.5, "nearest")
        c = nn.Upsample(scale_factor=(1.5, 2), mode="nearest-exact")
        d = nn.UpsamplingNearest2d(scale_factor=0.75)
        e = nn.Upsample(scale_factor=2)
        """
    )
    assert [(f.node, f.rule) for f in outcome.findings] == [
        ("4:5", "DL005"),
        ("5:5", "DL005"),
        ("6:5", "DL005"),
        ("7:5", "DL005"),
    ]
    first = outcome.findings[0]
    # scalar scale, rank not stated anywhere: checked as 2-D, and not auto-fixed
    assert first.suggestions[0].code == (
        'a = F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=False)'
    )
    assert (4, 5) not in outcome.safe_edits and (6, 5) in outcome.safe_edits
    assert outcome.findings[3].suggestions[0].code == (
        'nn.Upsample(scale_factor=0.75, mode="bilinear", align_corners=False)'
    )


def test_resize_rank_comes_from_its_sequential() -> None:
    outcome = check(
        """
        up = nn.Sequential(nn.Upsample(scale_factor=1.5), nn.Conv3d(4, 4, 3, padding=1))
        """
    )
    (finding,) = outcome.findings
    assert finding.metrics["pattern"] == [[2, 1]] * 3
    assert outcome.safe_edits[(2, 20)] == {"mode": "trilinear", "align_corners": False}


# --- suppressions -------------------------------------------------------------------------


def test_noqa_and_ignore_comments() -> None:
    code = """
        a = nn.ConvTranspose2d(4, 4, 3, stride=2)  # noqa: DL001
        b = nn.ConvTranspose2d(4, 4, 3, stride=2)  # noqa: DL002
        c = nn.ConvTranspose2d(4, 4, 3, stride=2)  # deconvlint: ignore[DL001]
        d = nn.ConvTranspose2d(4, 4, 3, stride=2)  # noqa
        e = nn.ConvTranspose2d(
            4, 4, 3, stride=2,
        )  # deconvlint: ignore
        f = nn.ConvTranspose2d(4, 4, 3, stride=2)  # deconvlint: ignore[DL005, DL002]
        """
    assert rules(code) == [("3:5", "DL001"), ("9:5", "DL001")]


def test_suppressions_parse_codes() -> None:
    text = "x = 1  # noqa: DL001,DL003\ny = 2  # deconvlint: ignore[dl005]\nz = 3  # noqa\n"
    assert suppressions(text) == {1: {"DL001", "DL003"}, 2: {"DL005"}, 3: None}


def test_settings_apply() -> None:
    code = "nn.ConvTranspose2d(4, 4, 1, stride=2)\nnn.ConvTranspose2d(4, 4, 3, stride=2)\n"
    assert [f.rule for f in check(code).findings] == ["DL002", "DL001"]
    assert [f.rule for f in check(code, ignore=("DL002",)).findings] == ["DL001"]


# --- suggestions show the rewritten call ---------------------------------------------------


def test_suggestion_keeps_the_users_layout_and_expressions() -> None:
    (finding,) = check(
        """
        class Up(nn.Module):
            def __init__(self, c):
                self.up = nn.ConvTranspose2d(
                    c * 2,  # from the skip
                    c,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                )
        """
    ).findings
    kernel, resize_conv = finding.suggestions
    assert kernel.code == textwrap.dedent(
        """\
        self.up = nn.ConvTranspose2d(
            c * 2,  # from the skip
            c,
            kernel_size=4,
            stride=2,
            padding=1,
            output_padding=0,
        )"""
    )
    assert "nn.Conv2d(c * 2, c, kernel_size=3, padding=1)" in resize_conv.code
    assert kernel.title.startswith("ConvTranspose2d(k=4, s=2, p=1)")


def test_dilated_kernel_rewrite_sets_dilation_to_one() -> None:
    (finding,) = check("nn.ConvTranspose1d(2, 2, 2, stride=2, dilation=2)\n").findings
    assert finding.rule == "DL002"
    assert "dilation=1" in finding.suggestions[0].code


def test_editor_adds_keywords_after_a_trailing_comma() -> None:
    text = "up = nn.ConvTranspose2d(\n    4,\n    2,\n    3,  # k\n)\n"
    new = SourceEditor(text).apply({(1, 6): {"stride": 2, "output_padding": 1}})
    assert (
        new
        == "up = nn.ConvTranspose2d(\n    4,\n    2,\n    3,  # k\n    stride=2,\n    output_padding=1,\n)\n"
    )


def test_suppressions_tokenize_only_a_file_that_may_hold_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tokenize

    from deconvlint.source import check

    text = 'up = nn.ConvTranspose2d(8, 4, 3, stride=2)  # noqa: DL001\ns = "# noqa"\n'
    assert check.suppressions(text) == {1: frozenset({"DL001"})}  # the string is no comment

    def refused(*args: object) -> None:
        raise AssertionError("tokenized")

    monkeypatch.setattr(tokenize, "generate_tokens", refused)
    assert check.suppressions("up = nn.ConvTranspose2d(8, 4, 3, stride=2)\n# a comment\n") == {}
    with pytest.raises(AssertionError, match="tokenized"):
        check.suppressions(text)
