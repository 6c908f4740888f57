"""HDF5 through h5py, for hostile files: a legacy Keras ``.h5`` model and a ``.keras``
archive's ``model.weights.h5``.

h5py is optional (``pip install 'deconvlint[keras]'``) and imported only here, when a legacy
file is read or a rule asks for weights.  What a file cannot make this module do:

- follow a link out of the file: only hard links are followed (an external link names another
  file, a soft link another place; Keras writes neither), and links are looked at without
  being resolved;
- read a virtual dataset (it maps other files) or one with external storage (its bytes live in
  another file): both are refused before a byte is read;
- allocate without bound: a dataset is read only when its declared size is at most
  :data:`MAX_VARIABLE_BYTES` and, compressed, at most :data:`MAX_EXPANSION` times what it stores;
  string attributes are bounded before they are read where HDF5 says their size, and checked
  after it where it does not (a variable-length string lives in the file, so it is no larger
  than the file); a walk visits at most :data:`MAX_LINKS` links;
- load code: a dataset compressed by a filter that is not built into HDF5 or h5py (one HDF5
  would look for as a plugin on its plugin path) is not read.

Every h5py or HDF5 failure is an :class:`UnreadableHDF5` with a one-line cause.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from deconvlint.errors import LoadError, one_line

H5PY_HINT = "pip install 'deconvlint[keras]'"
#: What to pass instead of an HDF5 file that is not a Keras model.
KERAS_HINT = "check the model's .keras file (model.save('model.keras'))"
#: Largest dataset read, declared (a 4x4x2048x2048 float32 kernel is 256 MiB).
MAX_VARIABLE_BYTES = 256 << 20
#: Largest declared/stored ratio of a compressed dataset above :data:`_EXPANSION_FLOOR`.
MAX_EXPANSION = 1000
_EXPANSION_FLOOR = 1 << 20
#: Links a walk of the file visits at most (a real model: a few per layer).
MAX_LINKS = 100_000
#: Deepest group nesting followed (a layer adds 2: ``layers/<key>``).
MAX_DEPTH = 64
#: Largest short string attribute (a layer name, one weight name).
MAX_NAME_BYTES = 64 << 10
#: Most names a list attribute (``weight_names``, ``layer_names``) may hold.
MAX_NAMES = 100_000


class UnreadableHDF5(Exception):
    """An HDF5 file, group or dataset that is not read; ``str()`` is the one-line cause."""


class H5pyMissing(LoadError):
    """h5py is not installed: the message names the extra that installs it."""


def import_h5py() -> Any:
    """h5py, or :class:`H5pyMissing`."""
    try:
        import h5py
    except ImportError:
        raise H5pyMissing(f"h5py is not installed ({H5PY_HINT})") from None
    return h5py


@contextlib.contextmanager
def opened(file: IO[bytes]) -> Iterator[Any]:
    """``h5py.File`` over an open binary file object, read-only; the file object is closed
    with it.  A file h5py cannot open is :class:`UnreadableHDF5`."""
    h5py = import_h5py()
    with file:
        try:
            h5 = h5py.File(file, "r")
        except Exception as exc:  # OSError, and whatever the file object raises
            raise UnreadableHDF5(f"not an HDF5 file, or a damaged one ({cause(exc)})") from None
        with h5:
            yield h5


def cause(exc: BaseException) -> str:
    """An exception as a short one-line cause."""
    return one_line(exc, empty=type(exc).__name__)


def child(group: Any, name: str, kind: str) -> Any:
    """``group[name]`` when ``name`` is a hard link to a ``kind`` ("group" or "dataset"),
    else ``None``; the link is looked at without being followed."""
    h5py = import_h5py()
    key = name.encode("utf-8", "surrogateescape")
    try:
        if not group.id.links.exists(key):
            return None
        if group.id.links.get_info(key).type != h5py.h5l.TYPE_HARD:
            return None  # a soft link (another place) or an external link (another file)
        found = h5py.h5o.open(group.id, key)
    except Exception as exc:
        raise UnreadableHDF5(f"cannot open {name!r}: {cause(exc)}") from None
    wanted = h5py.h5g.GroupID if kind == "group" else h5py.h5d.DatasetID
    if not isinstance(found, wanted):
        return None
    return h5py.Group(found) if kind == "group" else h5py.Dataset(found)


def child_path(group: Any, path: str, kind: str) -> Any:
    """:func:`child` along a ``/``-separated path of hard links."""
    *folders, last = path.split("/")
    for folder in folders:
        group = child(group, folder, "group") if folder else None
        if group is None:
            return None
    return child(group, last, kind) if last else None


def link_names(group: Any, budget: list[int]) -> list[str]:
    """The names of ``group``'s links (not resolved), charging ``budget[0]`` one per link."""
    names: list[str] = []
    try:
        for key in group.id.__iter__():
            budget[0] -= 1
            if budget[0] < 0:
                raise UnreadableHDF5(f"more than {MAX_LINKS:,} links")
            names.append(key.decode("utf-8", "surrogateescape"))
    except UnreadableHDF5:
        raise
    except Exception as exc:
        raise UnreadableHDF5(f"cannot list a group: {cause(exc)}") from None
    return names


def _attribute(obj: Any, name: str) -> Any:
    """The attribute's low-level id, or ``None`` when ``obj`` has none of that name."""
    h5py = import_h5py()
    key = name.encode()
    try:
        if not h5py.h5a.exists(obj.id, key):
            return None
        return h5py.h5a.open(obj.id, key)
    except Exception as exc:
        raise UnreadableHDF5(f"cannot read the attribute {name!r}: {cause(exc)}") from None


def has_attribute(obj: Any, name: str) -> bool:
    return _attribute(obj, name) is not None


def _strings(obj: Any, name: str, limit: int, most: int) -> list[str] | None:
    """A string attribute's values (a scalar is one), each at most ``limit`` bytes."""
    h5py = import_h5py()
    attr = _attribute(obj, name)
    if attr is None:
        return None
    count = math.prod(attr.shape or ())
    if attr.shape is None or count > most:
        raise UnreadableHDF5(f"the attribute {name!r} holds {count:,} values, more than {most:,}")
    if count == 0:
        return []
    info = h5py.check_string_dtype(attr.dtype)
    if info is None:
        raise UnreadableHDF5(f"the attribute {name!r} is not text ({attr.dtype})")
    if info.length is not None and info.length > limit:  # fixed length: known before reading
        raise UnreadableHDF5(f"the attribute {name!r} is larger than {limit:,} bytes")
    try:
        value = obj.attrs[name]  # variable length: stored in the file, so bounded by its size
    except Exception as exc:
        raise UnreadableHDF5(f"cannot read the attribute {name!r}: {cause(exc)}") from None
    texts = []
    for item in np.asarray(value, dtype=object).reshape(-1):
        raw = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else bytes(item)
        if len(raw) > limit:
            raise UnreadableHDF5(f"the attribute {name!r} is larger than {limit:,} bytes")
        texts.append(raw.decode("utf-8", "surrogateescape"))
    return texts


def string_attribute(obj: Any, name: str, limit: int = MAX_NAME_BYTES) -> str | None:
    """A text attribute (at most ``limit`` bytes), ``None`` when absent."""
    values = _strings(obj, name, limit, 1)
    if values is None:
        return None
    if len(values) != 1:
        raise UnreadableHDF5(f"the attribute {name!r} is not one string")
    return values[0]


def string_list_attribute(obj: Any, name: str) -> list[str] | None:
    """A list-of-names attribute (``weight_names``), ``None`` when absent; an empty list of
    another type (Keras writes ``[]`` as an empty float array) is an empty list."""
    attr = _attribute(obj, name)
    if attr is not None and attr.shape is not None and math.prod(attr.shape) == 0:
        return []
    return _strings(obj, name, MAX_NAME_BYTES, MAX_NAMES)


def read_dataset(dataset: Any, name: str) -> np.ndarray:
    """A dataset's values, after the checks that keep the read inside the file and bounded.

    Keras's ``bfloat16`` variables (2-byte opaque datasets) come back as float32.
    """
    try:
        virtual, external = dataset.is_virtual, dataset.external
        shape, dtype = dataset.shape, dataset.dtype
        stored = dataset.id.get_storage_size()
    except Exception as exc:
        raise UnreadableHDF5(f"{name}: cannot read its layout: {cause(exc)}") from None
    if virtual:
        raise UnreadableHDF5(f"{name} is a virtual dataset (it maps other files): not read")
    if external:
        raise UnreadableHDF5(f"{name} keeps its data in external files: not read")
    if shape is None:
        raise UnreadableHDF5(f"{name} has no shape")
    unknown = _unknown_filters(dataset)
    if unknown:
        raise UnreadableHDF5(f"{name} is compressed by filter {unknown} (a plugin): not read")
    # Keras writes ml_dtypes' bfloat16 as 2-byte opaque values (tagged dtype="bfloat16" in a
    # .keras archive, untagged in a legacy .h5): no other Keras variable is 2-byte opaque.
    bfloat16 = dtype.kind == "V" and dtype.itemsize == 2 and dtype.fields is None
    if dtype.kind not in "fiu" and not bfloat16:
        raise UnreadableHDF5(f"{name} is not numeric ({dtype})")
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_VARIABLE_BYTES:
        raise UnreadableHDF5(
            f"{name} declares {declared:,} bytes, more than {MAX_VARIABLE_BYTES:,}"
        )
    if declared > _EXPANSION_FLOOR and declared > MAX_EXPANSION * stored:
        raise UnreadableHDF5(f"{name} declares {declared:,} bytes but stores {stored:,}")
    try:
        values = np.empty(shape, dtype=dtype)
        if values.size and bfloat16:  # opaque 2-byte values, read as stored
            dataset.id.read(_all(), _all(), values, dataset.id.get_type())
        elif values.size:
            dataset.read_direct(values)
    except Exception as exc:
        raise UnreadableHDF5(f"{name}: cannot read its values: {cause(exc)}") from None
    if bfloat16:  # the high half of a float32 (Keras writes the bytes little-endian)
        return (values.view("<u2").astype(np.uint32) << 16).view(np.float32)
    return values


#: Filters built into HDF5 (deflate, shuffle, fletcher32, szip, nbit, scaleoffset) and h5py (lzf).
_BUILT_IN_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 32000})


def _unknown_filters(dataset: Any) -> list[int]:
    try:
        plist = dataset.id.get_create_plist()
        codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    except Exception as exc:
        raise UnreadableHDF5(f"cannot read a dataset's filters: {cause(exc)}") from None
    return [code for code in codes if code not in _BUILT_IN_FILTERS]


def _all() -> Any:
    return import_h5py().h5s.ALL
