"""Atomic file writes: a temporary file beside the target, then ``os.replace``."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` as bytes (independent of the file name it will get)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` written atomically."""
    write_bytes(path, torch_bytes(obj))
