"""Checkpoint files: one ``.npz`` holding named arrays and a JSON header, written atomically.

Layout of a checkpoint (a plain NumPy ``.npz`` archive, readable with ``np.load``):

* every array under its own name (parameters, optimizer state, hidden state, ...);
* ``__header__``: the UTF-8 bytes of a JSON object (as a ``uint8`` array) with
  ``format`` (``"rnnx-checkpoint"``), ``version``, ``sha256`` and the caller's
  ``meta`` (configuration, vocabulary, RNG state, step, loss history, ...).

``sha256`` is the digest of the canonical JSON of ``meta`` followed by every array's
name, dtype, shape and bytes in sorted name order, so a file whose arrays or header were
changed, or that was cut short, is refused with :class:`CheckpointError` rather than
loaded. Loading never runs code: ``np.load(allow_pickle=False)`` and ``json`` only.

Writing goes to a temporary file in the target's directory, which is flushed and
``fsync``-ed, then renamed over the target with ``os.replace`` (atomic on POSIX and
Windows) and the directory is ``fsync``-ed: a crash at any moment leaves either the old
file or the new one, never a mixture.
"""

import hashlib
import io
import json
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["FORMAT", "VERSION", "CheckpointError", "save", "load"]

FORMAT = "rnnx-checkpoint"
VERSION = 1
_HEADER = "__header__"


class CheckpointError(ValueError):
    """A checkpoint file is missing pieces, damaged, modified or of another version."""


def _digest(meta, arrays):
    h = hashlib.sha256()
    h.update(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _check_arrays(arrays):
    out = {}
    for name, a in arrays.items():
        if not isinstance(name, str) or not name or name == _HEADER:
            raise ValueError(f"array names must be non-empty str other than {_HEADER!r}, "
                             f"got {name!r}")
        a = np.asarray(a)
        if a.dtype.hasobject:
            raise TypeError(f"arrays[{name!r}] holds Python objects; only plain numeric "
                            "arrays are stored")
        out[name] = a
    return out


def save(path, arrays, meta):
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The target file (conventionally ``*.npz``); its directory must exist.
    arrays : dict of str to ndarray
        Numeric arrays (no object arrays).
    meta : dict
        Anything ``json`` can write (nested dicts, lists, str, int, float, bool, None).

    Raises
    ------
    TypeError
        If an array holds Python objects or `meta` is not JSON-serialisable.
    OSError
        If the file cannot be written; the previous file at `path`, if any, is then
        untouched and no temporary file is left behind.
    """
    path = os.fspath(path)
    arrays = _check_arrays(arrays)
    try:
        meta = json.loads(json.dumps(meta, allow_nan=True))  # canonical round trip
    except (TypeError, ValueError) as e:
        raise TypeError(f"meta must be JSON-serialisable: {e}") from None
    header = {"format": FORMAT, "version": VERSION, "sha256": _digest(meta, arrays),
              "meta": meta}
    payload = dict(arrays)
    payload[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; keep the usual mode
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory):
    """Make the rename durable (where the OS lets a directory be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def load(path):
    """Read and verify a checkpoint written by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    arrays : dict of str to ndarray
    meta : dict

    Raises
    ------
    FileNotFoundError
        If there is no file at `path`.
    CheckpointError
        If the file is not an rnnx checkpoint, is truncated or damaged, has another
        format version, or its checksum does not match its contents.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            names = list(z.files)
            if _HEADER not in names:
                raise CheckpointError(f"{path} is not an rnnx checkpoint (no header)")
            arrays = {n: z[n] for n in names if n != _HEADER}
            raw = z[_HEADER]
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path} is truncated or damaged ({type(e).__name__}: {e})") \
            from None
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path} has a malformed header")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{path} has a damaged header (not valid JSON)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rnnx checkpoint")
    version = header.get("version")
    if version != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {version!r}; this rnnx "
                              f"reads version {VERSION}")
    meta = header.get("meta")
    if not isinstance(meta, dict) or not isinstance(header.get("sha256"), str):
        raise CheckpointError(f"{path} has a malformed header")
    if _digest(meta, arrays) != header["sha256"]:
        raise CheckpointError(f"{path} failed its checksum: the file was modified or damaged")
    return arrays, meta
