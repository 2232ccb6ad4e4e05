"""Downloads that land only when verified: the bytes of a URL, checked before they are kept;
and the sha256 of a file on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from avmodels import atomic


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_verified(
    url: str, dest: str | Path, verify: Callable[[str], None], timeout: float
) -> str:
    """Download ``url`` to ``dest`` through a temporary file beside it, renamed onto ``dest``
    only after ``verify(sha256 hex digest)`` returned (it raises to refuse the bytes), so
    ``dest`` is either absent/unchanged or complete and verified. Returns the digest."""
    import urllib.request  # here: jobs that only hash files (provenance) skip its import

    digest = hashlib.sha256()
    with atomic.writing(dest, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
        for chunk in iter(lambda: resp.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
        verify(digest.hexdigest())
    return digest.hexdigest()
