"""What a model file is, decided from its name and its content (bounded reads; nothing in it
runs): the one place that recognises a file.

A file's name decides first: ``*.onnx`` is ONNX, ``*.keras`` a Keras archive and ``*.h5`` or
``*.hdf5`` HDF5 (a legacy Keras model, if it holds one), whatever the bytes; a file found in a
folder with another name is ONNX.  Any other file named on its own is recognised by its content:

- ``torch.export.save`` (``.pt2``): a zip with ``archive_format`` or ``models/``;
- ``torch.jit.save`` (TorchScript): a zip with ``code/`` and ``constants.pkl``;
- ``torch.save(model)`` or any pickle: a zip with ``data.pkl``, or a pickle stream, whose opcodes
  name classes;
- ``torch.save(state_dict)``: the same, naming only tensor rebuilders;
- Keras's ``model.save("x.keras")``: a zip with ``config.json`` (or another member Keras
  writes: ``metadata.json``, ``model.weights.h5``) and none of torch's;
- HDF5 (Keras's legacy ``model.save("x.h5")``, or any HDF5 file): its signature at offset 0, or
  after a user block at 512, 1024, 2048 ... bytes (up to :data:`MAX_HDF5_USER_BLOCK`);
- anything else: ONNX, whose front end says what is wrong with it.

Pickles are read as opcodes (:mod:`pickletools`), never unpickled.

>>> file_format("models/decoder.onnx").value, file_format("x.pt2", sniffed=False).value
('onnx', 'onnx')
>>> file_format("gan.keras", sniffed=False).value, file_format("gan.h5", sniffed=False).value
('keras', 'hdf5')
"""

from __future__ import annotations

import enum
import functools
import io
import os
import re
from dataclasses import dataclass, field
from typing import IO

from deconvlint.files import open_regular

ONNX_SUFFIX = ".onnx"
KERAS_SUFFIX = ".keras"
HDF5_SUFFIXES = (".h5", ".hdf5")


class FileFormat(str, enum.Enum):
    ONNX = "onnx"  # or anything unrecognised: the ONNX front end says what is wrong
    EXPORTED_PROGRAM = "torch.export"
    TORCHSCRIPT = "torchscript"
    PICKLED_OBJECT = "pickle"
    PICKLED_WEIGHTS = "state_dict"
    OTHER_ZIP = "zip"
    KERAS = "keras"  # a .keras archive (Keras 3's model.save), or a zip that looks like one
    HDF5 = "hdf5"  # an HDF5 file: a legacy Keras .h5 model if it has a model_config attribute


#: The formats the Keras front end reads (without keras, tensorflow, jax or torch).
KERAS_FORMATS = frozenset({FileFormat.KERAS, FileFormat.HDF5})
#: The formats the torch front end reads (or refuses): checking them imports torch.
TORCH_FORMATS = frozenset(
    {
        FileFormat.EXPORTED_PROGRAM,
        FileFormat.TORCHSCRIPT,
        FileFormat.PICKLED_OBJECT,
        FileFormat.PICKLED_WEIGHTS,
        FileFormat.OTHER_ZIP,
    }
)


# Globals a pickle of tensors and plain containers names: a state_dict or a checkpoint of weights.
_WEIGHT_GLOBALS = re.compile(
    r"collections OrderedDict|torch\._utils _rebuild_\w+|torch \w*Storage|torch\.storage \w+"
    r"|torch\._tensor _rebuild_from_type_v2|torch\.nn\.parameter Parameter"
    r"|torch (Size|device|float\w*|bfloat16|half|double|u?int\d*|long|short|bool|complex\w*)"
    r"|_codecs encode|numpy(\._core|\.core)?(\.multiarray)? (_reconstruct|scalar|dtype|ndarray)"
)
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of torch.save's legacy (non-zip) format
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"}
)


#: Bounds of the opcode walk: a real ``torch.save(model)`` of 900 layers is 0.2 M ops, 0.5 MB.
MAX_PICKLE_OPS = 1_000_000
MAX_PICKLE_BYTES = 32 << 20
#: Bounds of a zip's member list, read before any member.
MAX_ZIP_MEMBERS = 100_000
#: The members of a ``.keras`` archive (Keras 3 writes them at the top of the zip).
KERAS_CONFIG_MEMBER = "config.json"
KERAS_WEIGHTS_MEMBER = "model.weights.h5"
KERAS_MEMBERS = frozenset(
    {KERAS_CONFIG_MEMBER, "metadata.json", KERAS_WEIGHTS_MEMBER, "model.weights.npz"}
)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Largest user block searched for the HDF5 signature (HDF5 looks at 0, 512, 1024, 2048 ...).
MAX_HDF5_USER_BLOCK = 1 << 20


@dataclass
class PickleGlobals:
    names: set[str] = field(default_factory=set)  # "module name" of every GLOBAL
    legacy: bool = False  # the first pickle is torch's legacy magic number
    complete: bool = True  # every opcode was read within the bounds


def pickle_globals(stream: IO[bytes]) -> PickleGlobals:
    """The globals of the pickles in ``stream``, read as opcodes (nothing runs): at most the
    first :data:`MAX_PICKLE_BYTES` bytes (a zip member inflates only that far) and at most
    :data:`MAX_PICKLE_OPS` opcodes of them."""
    import pickletools  # here, as zipfile below: a Python or ONNX file's check needs neither

    found = PickleGlobals()
    head = stream.read(MAX_PICKLE_BYTES + 1)
    cut = len(head) > MAX_PICKLE_BYTES
    prefix = io.BytesIO(head[:MAX_PICKLE_BYTES] if cut else head)
    ops = 0
    for index in range(6):  # torch's legacy format: magic, protocol, sys info, object, keys
        if prefix.read(1) != b"\x80":
            break
        prefix.seek(-1, io.SEEK_CUR)
        recent: list[str | None] = []  # what the last ops pushed, for STACK_GLOBAL
        memo: dict[int, str | None] = {}
        try:
            for op, arg, _pos in pickletools.genops(prefix):
                ops += 1
                if ops > MAX_PICKLE_OPS:
                    found.complete = False
                    return found
                if op.name in ("GLOBAL", "INST"):
                    found.names.add(str(arg))
                    recent.append(None)
                elif op.name == "STACK_GLOBAL":
                    pair = recent[-2:]
                    found.names.add(" ".join(pair) if len(pair) == 2 and None not in pair else "?")
                    recent.append(None)
                elif op.name == "MEMOIZE":
                    memo[len(memo)] = recent[-1] if recent else None
                elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(arg)] = recent[-1] if recent else None
                elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                    recent.append(memo.get(int(arg)))
                elif op.name in _STRING_OPS:
                    recent.append(str(arg))
                elif op.name == "LONG1" and index == 0 and arg == _TORCH_MAGIC:
                    found.legacy = True
                elif op.name != "PROTO":
                    recent.append(None)
        except ValueError:  # raw tensor data after the pickles, a truncated file, or the bound
            found.complete = not cut  # a cut stream fails where it was cut, or may hide more
            break
    return found


def _classify_pickle(stream: IO[bytes]) -> FileFormat:
    """Weights when every global the pickle names rebuilds a tensor or a plain container; a
    pickle too large to read whole within the bounds may hold anything."""
    found = pickle_globals(stream)
    if found.complete and all(_WEIGHT_GLOBALS.fullmatch(name) for name in found.names):
        return FileFormat.PICKLED_WEIGHTS
    return FileFormat.PICKLED_OBJECT


def _sniff_zip(file: IO[bytes]) -> FileFormat:
    import zipfile

    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return FileFormat.ONNX
    with archive:
        names = archive.namelist()
        if len(names) > MAX_ZIP_MEMBERS:
            return FileFormat.OTHER_ZIP
        # torch writes every member below one top folder, named after the file
        members = {name.split("/", 1)[-1]: name for name in names}
        members.update({name: name for name in names})
        if "archive_format" in members or any(m.startswith("models/") for m in members):
            return FileFormat.EXPORTED_PROGRAM
        if "constants.pkl" in members and any(m.startswith("code/") for m in members):
            return FileFormat.TORCHSCRIPT
        if "data.pkl" in members:
            try:
                with archive.open(members["data.pkl"]) as member:  # inflated as it is read
                    return _classify_pickle(member)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError):
                return FileFormat.PICKLED_OBJECT  # unreadable: nothing proves it is weights
        if KERAS_MEMBERS.intersection(names):  # Keras writes them at the top, no folder
            return FileFormat.KERAS
    return FileFormat.OTHER_ZIP


def hdf5_offset(file: IO[bytes]) -> int | None:
    """Where the HDF5 signature is in ``file``: 0, or the size of a user block before it
    (512, 1024, 2048 ... at most :data:`MAX_HDF5_USER_BLOCK`); ``None`` when it is not there.

    >>> hdf5_offset(io.BytesIO(bytes(512) + HDF5_SIGNATURE)), hdf5_offset(io.BytesIO(b"PK"))
    (512, None)
    """
    offset = 0
    while offset <= MAX_HDF5_USER_BLOCK:
        file.seek(offset)
        head = file.read(len(HDF5_SIGNATURE))
        if head == HDF5_SIGNATURE:
            return offset
        if len(head) < len(HDF5_SIGNATURE):
            return None
        offset = max(512, offset * 2)
    return None


def sniff(path: str | os.PathLike) -> FileFormat:
    """What wrote the file at ``path``, from its first bytes, zip members and pickle opcodes;
    every read is bounded (a zip member is inflated only as far as its opcodes are walked), and
    the answer is remembered while the file stays the same (size, times, inode).

    >>> import tempfile, pickle, collections
    >>> with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
    ...     pickle.dump(collections.Counter("ab"), f)
    >>> sniff(f.name).value
    'pickle'
    """
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return FileFormat.ONNX  # the ONNX front end reports missing and unreadable files
    stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    return _sniff_file(os.fspath(path), stamp)


@functools.lru_cache(maxsize=64)
def _sniff_file(path: str, stamp: tuple[int, ...]) -> FileFormat:
    del stamp  # part of the cache key only
    try:
        with open_regular(path) as file:
            head = file.read(2)
            file.seek(0)
            if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
                return _classify_pickle(file)
            if head == b"PK":
                return _sniff_zip(file)
            if hdf5_offset(file) is not None:
                return FileFormat.HDF5
    except OSError:
        pass  # the ONNX front end reports missing, unreadable and irregular files
    return FileFormat.ONNX


def file_format(path: str | os.PathLike, *, sniffed: bool = True) -> FileFormat:
    """How ``path`` is read: by its name when it ends in ``.onnx``, ``.keras``, ``.h5`` or
    ``.hdf5``, whatever its bytes; any other name is ONNX when the file was found in a folder
    (``sniffed`` false), else recognised by :func:`sniff`.

    >>> file_format("models/decoder.onnx").value, file_format("x.pt2", sniffed=False).value
    ('onnx', 'onnx')
    """
    name = os.fspath(path).lower()
    if name.endswith(ONNX_SUFFIX):
        return FileFormat.ONNX
    if name.endswith(KERAS_SUFFIX):
        return FileFormat.KERAS
    if name.endswith(HDF5_SUFFIXES):
        return FileFormat.HDF5
    return sniff(path) if sniffed else FileFormat.ONNX
