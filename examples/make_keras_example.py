"""Write ``examples/dcgan_generator.keras``, the Keras model the README checks.

    KERAS_BACKEND=torch python examples/make_keras_example.py            # rewrites it
    KERAS_BACKEND=torch python examples/make_keras_example.py OUT_DIR    # writes it to OUT_DIR

Needs Keras 3 (any backend; the test extra installs it with torch).  It is the generator of
TensorFlow's DCGAN tutorial (``make_generator_model``,
https://www.tensorflow.org/tutorials/generative/dcgan) with the tutorial's layers and
geometry, ``Conv2DTranspose(..., (5, 5), strides=(2, 2), padding='same')`` included, but fewer
filters (8 and 4 instead of 256, 128 and 64) and a 16-dimensional noise vector, so that the
file is a few tens of KB.  The bytes are deterministic: fixed seed, and the archive's dates
(``metadata.json``'s ``date_saved``, the zip's member times) are set to fixed values, and the
``shared_object_id`` numbers (Python ``id()``s) renumbered in order.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def generator():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential(name="generator")
    model.add(keras.Input(shape=(16,)))
    model.add(layers.Dense(7 * 7 * 8, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Reshape((7, 7, 8)))
    model.add(layers.Conv2DTranspose(8, (5, 5), strides=(1, 1), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    # The tutorial's uneven layers, kept as written: the .keras file is there to be flagged.
    model.add(
        layers.Conv2DTranspose(
            4,
            (5, 5),
            strides=(2, 2),
            padding="same",
            use_bias=False,
        )  # deconvlint: ignore[DL001]
    )
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(
        layers.Conv2DTranspose(
            1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"
        )  # deconvlint: ignore[DL001]
    )
    return model


def _renumbered(config: str) -> str:
    """``shared_object_id`` values (ids of Python objects) as 1, 2, ... in order of appearance."""
    ids: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return f'"shared_object_id": {ids.setdefault(match[1], str(len(ids) + 1))}'

    return re.sub(r'"shared_object_id": (\d+)', number, config)


def deterministic(archive: bytes) -> bytes:
    """The archive with fixed dates, members in Keras's order."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata["date_saved"] = "2024-01-01@00:00:00"
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = _renumbered(data.decode()).encode()
            new.writestr(zipfile.ZipInfo(info.filename, _FIXED_TIME), data)
    return out.getvalue()


def main(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "dcgan_generator.keras"
    scratch = out_dir / "dcgan_generator.tmp.keras"
    generator().save(scratch)
    path.write_bytes(deterministic(scratch.read_bytes()))
    scratch.unlink()
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    print(main(target))
