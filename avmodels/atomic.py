"""Atomic file writes, and the error of an input that cannot be read back.

Every file the workflow writes goes through :func:`writing`: the content goes to a hidden
temporary file beside the target, is flushed to disk, and only then replaces the target
(``os.replace``). A crash or an error while writing leaves the old target, or none, never a
truncated one. (Clip folders and rendered videos, which ffmpeg writes, are built under a
temporary name and renamed whole by :mod:`avmodels.data.media` and :mod:`avmodels.data.synthetic`.)
Importing this module does not import torch.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


class InputError(Exception):
    """A step's input is unusable: no retry of the step itself can succeed."""


class UnreadableFile(InputError):
    """``path`` exists as an input but cannot be loaded (corrupt, truncated or missing)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"cannot load {path}: {reason}")


def temporary_path(path: Path) -> Path:
    """A hidden file beside ``path``, unique to one write, that the content goes to first."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextmanager
def writing(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` (``mode`` "w" or "wb", ``kwargs`` to ``open``);
    when the block ends without error it is synced and replaces ``path``, otherwise removed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _sync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _sync_dir(folder: Path) -> None:
    """Make the replacement itself durable (where the system lets a folder be synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one."""
    with writing(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with writing(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_csv(frame: Any, path: str | Path, **kwargs: Any) -> None:
    """``frame.to_csv(path, **kwargs)`` (a pandas DataFrame) written atomically."""
    with writing(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, **kwargs)


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` as bytes (independent of the file name it will get)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` written atomically."""
    write_bytes(path, torch_bytes(obj))


def torch_load(path: str | Path, **kwargs: Any) -> Any:
    """``torch.load(path, **kwargs)``; :class:`UnreadableFile` when the file is missing or
    cannot be deserialised."""
    import torch

    try:
        return torch.load(path, **kwargs)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        raise UnreadableFile(path, reason) from err
