"""Real models from real libraries through ``deconvlint.check(model, inputs)`` and through their
ONNX export (TorchScript exporter), side by side, with a check that the model is unchanged.

Libraries are used when installed (``pip install --no-deps``, never torchvision: it pulls
another torch): MONAI, asteroid, speechbrain, diffusers, basicsr.  basicsr's package imports
OpenCV, torchvision and its training stack; its architecture files need none of them, so they
are loaded here with those imports stubbed (the model code that runs is basicsr's own).
speechbrain imports torchaudio at start-up only to pick an audio backend: stubbed likewise
when torchaudio is absent.

For each model the script prints the reader, the findings by rule, whether the ONNX export
gives the same findings (by rule, severity and metrics, as tests/test_zoo.py compares them),
and whether parameters, buffers, attribute types and the output are unchanged by the check.
Usage: python benchmarks/real_library_models.py [MODEL ...]
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import sys
import time
import types
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import deconvlint  # noqa: E402
from deconvlint.config.settings import Settings  # noqa: E402

Builder = Callable[[], tuple[Any, tuple[Any, ...]]]


def _randn(*shape: int) -> Any:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def _stub(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules.setdefault(name, module)
    return sys.modules[name]


def _basicsr_archs() -> Any:
    """basicsr's architecture package without the package's own ``__init__`` files."""
    spec = importlib.util.find_spec("basicsr")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("basicsr")
    root = Path(next(iter(spec.submodule_search_locations)))

    class Registry:
        def register(self, obj: Any = None) -> Any:
            return obj if obj is not None else (lambda o: o)

    _stub("basicsr", __path__=[str(root)])
    _stub("basicsr.archs", __path__=[str(root / "archs")])
    _stub("basicsr.utils", __path__=[str(root / "utils")], get_root_logger=lambda: None)
    _stub("basicsr.utils.registry", ARCH_REGISTRY=Registry())
    _stub("basicsr.ops", __path__=[])
    _stub(
        "basicsr.ops.dcn",
        ModulatedDeformConvPack=torch.nn.Module,
        modulated_deform_conv=None,
    )
    if importlib.util.find_spec("torchvision") is None:
        _stub("torchvision", __version__="0.0")
    return importlib.import_module


def library_models() -> dict[str, Builder]:
    found: dict[str, Builder] = {}
    try:
        from monai.networks import nets

        found["monai.UNet-3d"] = lambda: (
            nets.UNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2)),
            (_randn(1, 1, 16, 16, 16),),
        )
        found["monai.BasicUNet-3d"] = lambda: (
            nets.BasicUNet(3, 1, 2, features=(2, 2, 4, 8, 16, 2)),
            (_randn(1, 1, 32, 32, 32),),
        )
        found["monai.AutoEncoder-2d"] = lambda: (
            nets.AutoEncoder(2, 1, 1, channels=(4, 8, 16), strides=(2, 2, 2)),
            (_randn(1, 1, 32, 32),),
        )
        found["monai.VarAutoEncoder-2d"] = lambda: (
            nets.VarAutoEncoder(2, (1, 32, 32), 1, 8, channels=(4, 8), strides=(2, 2)),
            (_randn(1, 1, 32, 32),),
        )
    except ImportError:
        pass
    try:
        from asteroid.models import ConvTasNet, DCUNet

        found["asteroid.DCUNet-10"] = lambda: (
            DCUNet("DCUNet-10", fix_length_mode="pad"),
            (_randn(1, 16000),),
        )
        found["asteroid.DCUNet-16"] = lambda: (
            DCUNet("DCUNet-16", fix_length_mode="pad"),
            (_randn(1, 16000),),
        )
        found["asteroid.ConvTasNet"] = lambda: (
            ConvTasNet(n_src=2, n_repeats=1, n_blocks=2, bn_chan=16, hid_chan=16, skip_chan=16,
                       n_filters=32),
            (_randn(1, 8000),),
        )  # fmt: skip
    except ImportError:
        pass
    try:
        from diffusers.models import AutoencoderKL, UNet2DModel

        found["diffusers.AutoencoderKL"] = lambda: (
            AutoencoderKL(
                block_out_channels=(8, 16),
                down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2,
                latent_channels=4,
                norm_num_groups=4,
            ),
            (_randn(1, 3, 32, 32),),
        )
        found["diffusers.UNet2DModel"] = lambda: (
            UNet2DModel(
                sample_size=16,
                block_out_channels=(8, 16),
                down_block_types=("DownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "UpBlock2D"),
                norm_num_groups=4,
                layers_per_block=1,
            ),
            (_randn(1, 3, 16, 16), torch.tensor([10])),
        )
    except ImportError:
        pass
    try:
        load = _basicsr_archs()
        edsr = load("basicsr.archs.edsr_arch")
        rrdb = load("basicsr.archs.rrdbnet_arch")
        srresnet = load("basicsr.archs.srresnet_arch")
        swinir = load("basicsr.archs.swinir_arch")
        found["basicsr.EDSR-x4"] = lambda: (
            edsr.EDSR(3, 3, num_feat=16, num_block=2, upscale=4),
            (_randn(1, 3, 16, 16),),
        )
        found["basicsr.RRDBNet-x4"] = lambda: (
            rrdb.RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4),
            (_randn(1, 3, 16, 16),),
        )
        found["basicsr.MSRResNet-x4"] = lambda: (
            srresnet.MSRResNet(3, 3, num_feat=8, num_block=2, upscale=4),
            (_randn(1, 3, 16, 16),),
        )
        found["basicsr.SwinIR-x2"] = lambda: (
            swinir.SwinIR(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[2],
                          num_heads=[2], mlp_ratio=2, upsampler="pixelshuffle"),
            (_randn(1, 3, 16, 16),),
        )  # fmt: skip
    except Exception:
        pass
    try:
        if importlib.util.find_spec("torchaudio") is None:
            _stub("torchaudio", __version__="0.0", list_audio_backends=lambda: [])
        from speechbrain.lobes.models.Cnn14 import CNN14PSI, Cnn14
        from speechbrain.lobes.models.PIQ import VectorQuantizedPSI_Audio

        def psi() -> tuple[Any, tuple[Any, ...]]:
            classifier = Cnn14(mel_bins=80, emb_dim=2048, return_reps=True).eval()
            with torch.no_grad():
                _, hs = classifier(_randn(1, 201, 80))
            return CNN14PSI(hs[0].shape[1]), (list(hs),)

        found["speechbrain.Cnn14"] = lambda: (
            Cnn14(mel_bins=80, emb_dim=64, return_reps=True),
            (_randn(1, 201, 80),),
        )
        found["speechbrain.CNN14PSI"] = psi
        found["speechbrain.VectorQuantizedPSI"] = lambda: (
            VectorQuantizedPSI_Audio(dim=16, K=32, numclasses=2),
            (_randn(1, 16, 16, 16), torch.tensor([1])),
        )
    except Exception:
        pass
    return found


def signature(report: Any) -> list[tuple[Any, ...]]:
    out = []
    for f in report.findings:
        metrics = {k: v for k, v in f.metrics.items() if k not in ("nodes", "output", "shuffle")}
        metrics.pop("compensated_by", None)
        if "outputs" in metrics:  # a folded DL004: the output's and its producer's names differ
            metrics["outputs"] = [
                {k: v for k, v in o.items() if k not in ("output", "node")}
                for o in metrics["outputs"]
            ]
        out.append((f.rule, f.severity, repr(sorted(metrics.items()))))
    return sorted(out)


def state(model: Any) -> tuple[dict[str, Any], dict[tuple[str, str], type]]:
    values = {k: v.detach().clone() for k, v in model.state_dict().items()}
    kinds = {
        (name, key): type(value)
        for name, m in model.named_modules()
        for key, value in vars(m).items()
    }
    return values, kinds


def unchanged(model: Any, inputs: tuple[Any, ...], before: Any, output: Any) -> bool:
    values, kinds = state(model)
    with torch.no_grad():
        again = copy.deepcopy(model)(*inputs)
    same_output = all(
        torch.equal(a, b)
        for a, b in zip(
            torch.utils._pytree.tree_leaves(output),
            torch.utils._pytree.tree_leaves(again),
            strict=True,
        )
        if isinstance(a, torch.Tensor)
    )
    return (
        kinds == before[1]
        and values.keys() == before[0].keys()
        and all(torch.equal(values[k], before[0][k]) for k in values)
        and same_output
    )


def onnx_report(model: Any, inputs: tuple[Any, ...]) -> Any:
    import onnx

    buffer = io.BytesIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(model, inputs, buffer, dynamo=False)
    return deconvlint.check(onnx.load_from_string(buffer.getvalue()), config=Settings())


def main() -> None:
    warnings.simplefilter("ignore")
    models = library_models()
    if len(sys.argv) > 1:
        models = {k: v for k, v in models.items() if k in sys.argv[1:]}
    for name, build in models.items():
        try:
            model, inputs = build()
            model.eval()
            with torch.no_grad():
                output = copy.deepcopy(model)(*inputs)
            before = state(model)
            start = time.perf_counter()
            report = deconvlint.check(model, inputs, config=Settings())
            seconds = time.perf_counter() - start
        except Exception as exc:
            print(f"{name}: check failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
            continue
        rules = Counter(f"{f.rule}:{f.severity}" for f in report.findings)
        kept = unchanged(model, inputs, before, output)
        try:
            by_onnx = onnx_report(model, inputs)
            agree = "same" if signature(by_onnx) == signature(report) else "DIFFERENT"
            onnx_rules = Counter(f"{f.rule}:{f.severity}" for f in by_onnx.findings)
        except Exception as exc:
            agree, onnx_rules = f"no export ({type(exc).__name__})", Counter()
        print(
            f"{name}: reader {report.frontend}, {seconds * 1000:.0f} ms, "
            f"{len(report.findings)} findings {dict(sorted(rules.items()))}; ONNX: {agree}"
            + (f" {dict(sorted(onnx_rules.items()))}" if agree == "DIFFERENT" else "")
            + f"; model unchanged: {kept}"
        )
        for note in report.results[0].notes:
            print(f"    note: {note[:300]}")


if __name__ == "__main__":
    main()
