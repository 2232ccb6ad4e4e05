"""Atomic file writes, and the error of an input that cannot be read back.

Every file the workflow writes goes through :func:`writing`: the content goes to a hidden
temporary file beside the target, is flushed to disk, and only then replaces the target
(``os.replace``). A crash or an error while writing leaves the old target, or none, never a
truncated one. (Clip folders and rendered videos, which ffmpeg writes, are built under a
temporary name and renamed whole by :mod:`avmodels.data.media` and :mod:`avmodels.data.synthetic`.)
:class:`Rows` is a table a step writes as CSV without importing pandas. Importing this module
imports neither torch nor pandas.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


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
    """``frame.to_csv(path, **kwargs)`` (a pandas DataFrame or :class:`Rows`) written
    atomically."""
    with writing(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, **kwargs)


@dataclass(frozen=True)
class Rows:
    """A table as its column names and one mapping per row (missing keys are empty cells).

    What a step writes without importing pandas, whose import every job of the step would
    pay: :meth:`to_csv` writes the bytes ``frame().to_csv(fh, index=False)`` writes for
    columns of Python numbers and strings (floats as their shortest repr, NaN and None as
    empty cells, a column of integers and floats written as floats).
    """

    columns: tuple[str, ...]
    records: tuple[Mapping[str, Any], ...]

    def __init__(self, columns: Sequence[str], records: Sequence[Mapping[str, Any]]) -> None:
        object.__setattr__(self, "columns", tuple(columns))
        object.__setattr__(self, "records", tuple(records))

    def __len__(self) -> int:
        return len(self.records)

    def column(self, name: str) -> list[Any]:
        """The values of column ``name``, None where a row has none."""
        return [r.get(name) for r in self.records]

    def frame(self) -> pd.DataFrame:
        """The table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(list(self.records), columns=list(self.columns))

    def to_csv(self, fh: IO[str], index: bool = False) -> None:
        """Write the table as CSV (a header line, then one line per row) to ``fh``."""
        if index:
            raise ValueError("Rows are written without an index")
        as_float = {c: _mixed_numbers(self.column(c)) for c in self.columns}
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(self.columns)
        for record in self.records:
            writer.writerow(_cell(record.get(c), as_float[c]) for c in self.columns)

    def text(self, leave_out: Sequence[str] = ()) -> str:
        """The table as aligned plain text (for a log), columns ``leave_out`` left out."""
        shown = [c for c in self.columns if c not in leave_out]
        cells = [shown] + [[_shown(r.get(c)) for c in shown] for r in self.records]
        widths = [max(len(row[i]) for row in cells) for i in range(len(shown))]
        return "\n".join(
            " ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
            for row in cells
        )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _mixed_numbers(values: list[Any]) -> bool:
    """Whether a column holds floats (NaN or None count) beside integers: pandas then writes
    its integers as floats."""
    numeric = [v for v in values if not isinstance(v, bool)]
    has_float = any(isinstance(v, float) or v is None for v in numeric)
    has_int = any(isinstance(v, numbers.Integral) for v in numeric)
    return has_float and has_int


def _cell(value: Any, as_float: bool) -> str:
    if _missing(value):
        return ""
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return repr(float(value)) if as_float else str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return str(value)


def _shown(value: Any) -> str:
    if _missing(value):
        return "NaN"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


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
