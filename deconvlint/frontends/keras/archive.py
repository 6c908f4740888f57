"""A ``.keras`` archive: the zip Keras 3's ``model.save("x.keras")`` writes, read bounded.

It holds ``config.json`` (the model's configuration), ``metadata.json`` and
``model.weights.h5`` (the variables, HDF5).  The member list is read first (at most
:data:`~deconvlint.frontends.sniff.MAX_ZIP_MEMBERS`); ``config.json`` is inflated only when its
declared size is within :data:`~deconvlint.frontends.keras.model_json.MAX_CONFIG_BYTES`, and
never past it.  The weights member is not read here: :class:`WeightsMember` says where it is,
and :meth:`WeightsMember.open` gives h5py a file object over it when a rule asks for weights
(read in place when Keras stored it uncompressed, as it does; a compressed one is inflated into
memory, at most :data:`MAX_INFLATED_WEIGHTS`).

>>> import io, zipfile
>>> buffer = io.BytesIO()
>>> with zipfile.ZipFile(buffer, "w") as z:
...     z.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": []}}')
>>> config, weights = read_archive(buffer)
>>> config["class_name"], weights
('Sequential', 'weights not read: the archive has no model.weights.h5; the checks that need weights skip every layer')
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any

from deconvlint.errors import LoadError, one_line
from deconvlint.files import open_regular
from deconvlint.frontends.keras.model_json import MAX_CONFIG_BYTES, parse_model_json
from deconvlint.frontends.sniff import (
    KERAS_CONFIG_MEMBER,
    KERAS_MEMBERS,
    KERAS_WEIGHTS_MEMBER,
    MAX_ZIP_MEMBERS,
)

#: Largest compressed weights member inflated into memory (Keras stores it uncompressed).
MAX_INFLATED_WEIGHTS = 1 << 30
_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class WeightsMember:
    """Where ``model.weights.h5`` lies in an archive: ``offset`` of its bytes in the file when
    stored uncompressed (``None``: compressed, inflated when opened), ``size`` once inflated."""

    archive: str
    offset: int | None
    size: int

    def open(self) -> IO[bytes]:
        """A seekable file object over the member's bytes (an ``OSError`` or a
        :class:`LoadError` when it cannot be read)."""
        file = open_regular(self.archive)
        try:
            if self.offset is not None:
                if self.offset + self.size > os.fstat(file.fileno()).st_size:
                    raise LoadError(f"{KERAS_WEIGHTS_MEMBER} runs past the end of the archive")
                return FileSpan(file, self.offset, self.size)
            if self.size > MAX_INFLATED_WEIGHTS:
                raise LoadError(
                    f"{KERAS_WEIGHTS_MEMBER} is compressed and inflates to more than "
                    f"{MAX_INFLATED_WEIGHTS >> 20} MiB"
                )
            with file, zipfile.ZipFile(file) as archive, archive.open(KERAS_WEIGHTS_MEMBER) as m:
                return io.BytesIO(m.read(self.size + 1)[: self.size])
        except BaseException:
            file.close()
            raise


class FileSpan(io.RawIOBase):
    """``size`` bytes of ``file`` from ``offset``, as a read-only seekable file of their own
    (positioned reads: h5py reads a stored zip member in place, only the parts it needs)."""

    def __init__(self, file: IO[bytes], offset: int, size: int) -> None:
        super().__init__()
        self._file, self._offset, self._size, self._position = file, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the member")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = max(0, min(len(view), self._size - self._position))
        data = os.pread(self._file.fileno(), wanted, self._offset + self._position)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def _data_offset(file: IO[bytes], info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes start: after its local header, name and extra field."""
    file.seek(info.header_offset)
    header = file.read(_LOCAL_HEADER)
    if len(header) < _LOCAL_HEADER or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local header for {info.filename!r}")
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    return info.header_offset + _LOCAL_HEADER + name_length + extra_length


def read_archive(
    file: str | os.PathLike | IO[bytes],
) -> tuple[dict[str, Any], WeightsMember | str | None]:
    """The configuration in a ``.keras`` archive (a path, or an open binary file), and where
    its weights are: a :class:`WeightsMember`, the note that says why there are none to read
    (no ``model.weights.h5``), or ``None`` when ``file`` is not a path.

    Errors (not a zip, truncated, no ``config.json``, too large, not JSON) are a
    :class:`LoadError` with a one-line cause.
    """
    path = None if hasattr(file, "read") else os.fspath(file)
    try:
        with open_regular(path) if path is not None else contextlib.nullcontext(file) as stream:
            return _read(stream, path)
    except LoadError:
        raise
    except (OSError, ValueError) as exc:  # OSError includes NotRegularFile
        raise LoadError(
            f"cannot read the file: {one_line(getattr(exc, 'strerror', '') or exc)}"
        ) from None


def _read(stream: IO[bytes], path: str | None) -> tuple[dict[str, Any], WeightsMember | str | None]:
    try:
        archive = zipfile.ZipFile(stream)
    except (*_ZIP_ERRORS, ValueError):
        raise LoadError(
            "not a Keras archive: not a zip file, or a truncated or damaged one "
            "(a .keras file is the zip model.save('model.keras') writes)"
        ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise LoadError(f"a zip of more than {MAX_ZIP_MEMBERS:,} members, not a Keras archive")
        members = {info.filename: info for info in infos}
        config_info = members.get(KERAS_CONFIG_MEMBER)
        if config_info is None:
            raise LoadError(_missing_config(members))
        if config_info.file_size > MAX_CONFIG_BYTES:
            raise LoadError(
                f"{KERAS_CONFIG_MEMBER} inflates to {config_info.file_size:,} bytes, more than "
                f"{MAX_CONFIG_BYTES >> 20} MiB (a zip bomb?)"
            )
        try:
            with archive.open(config_info) as member:
                raw = member.read(MAX_CONFIG_BYTES + 1)  # a lying size inflates no further
        except _ZIP_ERRORS as exc:
            cause = one_line(exc, empty=type(exc).__name__)
            raise LoadError(
                f"cannot read {KERAS_CONFIG_MEMBER} from the archive: {cause}"
            ) from None
        config = parse_model_json(raw, KERAS_CONFIG_MEMBER)
        weights_info = members.get(KERAS_WEIGHTS_MEMBER)
        if weights_info is None:
            return config, _missing_weights(members)
        if path is None:
            return config, None
        stored = weights_info.compress_type == zipfile.ZIP_STORED and not weights_info.flag_bits & 1
        try:
            offset = _data_offset(stream, weights_info) if stored else None
        except zipfile.BadZipFile as exc:
            raise LoadError(f"not a Keras archive: {one_line(exc)}") from None
        return config, WeightsMember(path, offset, weights_info.file_size)


def _missing_weights(members: dict[str, zipfile.ZipInfo]) -> str:
    if "model.weights.npz" in members:
        return (
            "weights not read: the archive keeps them in model.weights.npz, whose variables "
            "numpy can only unpickle; the checks that need weights skip every layer"
        )
    return (
        f"weights not read: the archive has no {KERAS_WEIGHTS_MEMBER}; the checks that need "
        "weights skip every layer"
    )


def _missing_config(members: dict[str, zipfile.ZipInfo]) -> str:
    found = sorted(KERAS_MEMBERS.intersection(members))
    if found:
        return (
            f"a Keras archive without {KERAS_CONFIG_MEMBER} (it holds {', '.join(found)}), so "
            "no model to check: pass the .keras file that model.save('model.keras') writes"
        )
    return (
        f"a zip archive without {KERAS_CONFIG_MEMBER}, not a Keras model: pass the .keras file "
        "that model.save('model.keras') writes"
    )
