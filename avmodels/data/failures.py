"""Why a clip's download failed: the reasons, reading yt-dlp's errors, and the failures CSV.

Every failure gets one of :data:`REASONS`. :data:`PERMANENT` ones (private, removed,
geo-blocked, ...) describe the video itself and are skipped by later runs; :data:`TRANSIENT`
ones (rate limits, bot checks, network errors) are never recorded, so every later run retries
them; the rest ("format", "runtime", "extractor", "other") are recorded and retried by default
(:data:`RETRIED`). The CSV has the columns :data:`avmodels.data.lists.FAILURE_COLUMNS`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from avmodels import atomic
from avmodels.data.lists import FAILURE_COLUMNS
from avmodels.settings import DownloadSettings

REASONS = (
    "invalid id",  # not an 11-character YouTube ID, or an unsafe clip ID
    "malformed",  # a bad time range
    "private",
    "unavailable",  # removed, deleted account, no such video (HTTP 404/410)
    "geo-blocked",
    "age-restricted",
    "corrupt",  # the downloaded bytes are not decodable media
    "no audio",
    "no video",
    "format",  # "Requested format is not available" (often: no JavaScript runtime)
    "runtime",  # the JavaScript runtime failed or is missing
    "extractor",  # yt-dlp could not read the page (outdated yt-dlp, changed site)
    "other",  # anything else
    "rate-limit",  # "This content isn't available, try again later", HTTP 429
    "bot-check",  # YouTube asks to sign in to prove this is not a bot
    "network",  # after all retries (also: download shorter than the range)
)
PERMANENT = frozenset(REASONS[:9])  # the video itself, as it is: skipped by later runs
TRANSIENT = frozenset({"rate-limit", "bot-check", "network"})  # never recorded as failed
RETRIED = DownloadSettings.retry  # recorded, retried by default
# yt-dlp reports a failed ffmpeg download only as "ffmpeg exited with code N"; ffmpeg >= 5
# exits with the low byte of the AVERROR, and 183 is AVERROR_INVALIDDATA (not media).
_FFMPEG_INVALID_DATA = 183

# (reason, lower-case substrings of the error text); first match wins, so the specific
# messages come before the generic "is not available" of removed videos
_MESSAGE_REASONS = (
    (
        "rate-limit",
        ("try again later", "rate-limit", "rate limit", "too many requests", "http error 429"),
    ),
    ("age-restricted", ("confirm your age", "age-restricted", "inappropriate for some users")),
    ("bot-check", ("not a bot", "sign in to confirm", "captcha")),
    (
        "runtime",
        (
            "javascript runtime",
            "js runtime",
            "challenge solving failed",
            "signature extraction failed",
            "nsig extraction failed",
            "only images are available",
        ),
    ),
    ("format", ("requested format is not available", "no video formats found")),
    ("private", ("private video", "video is private", "members-only", "join this channel")),
    (
        "geo-blocked",
        ("available in your country", "in your country", "geo restrict", "geo-restrict"),
    ),
    (
        "unavailable",
        (
            "video unavailable",
            "video is unavailable",
            "is not available",
            "no longer available",
            "has been removed",
            "been terminated",
            "does not exist",
            "copyright",
            "premieres in",
            "will begin in",
        ),
    ),
    ("corrupt", (f"ffmpeg exited with code {_FFMPEG_INVALID_DATA}",)),
    (
        "network",
        (
            "timed out",
            "timeout",
            "connection",
            "temporary failure",
            "name or service not known",
            "network is unreachable",
            "incomplete read",
            "giving up after",
            "ffmpeg exited with code",
            "http error 5",
        ),
    ),
)


def read_failures(path: str | Path) -> dict[str, dict[str, str]]:
    """Rows of a failures CSV by clip ID (the last row of a clip wins)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["clip_id"]: row for row in csv.DictReader(f) if row.get("clip_id")}


def write_failures(path: Path, rows: Iterable[Mapping[str, str]]) -> None:
    """Write a failures CSV (``FAILURE_COLUMNS``) atomically."""
    with atomic.writing(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FAILURE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def one_line(text: object, limit: int = 300) -> str:
    """An error message on one line: no colour codes, no "ERROR: " prefix, at most ``limit``."""
    text = re.sub(r"\s+", " ", re.sub(r"\x1b\[[0-9;]*m", "", str(text))).strip()
    return text.removeprefix("ERROR: ")[:limit]


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (DownloadError.exc_info, ExtractorError.cause, __cause__)."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or any(e is s for s in seen):
            continue
        seen.append(e)
        exc_info = getattr(e, "exc_info", None)
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
        todo += [exc_info[1]] if isinstance(exc_info, tuple) and len(exc_info) > 1 else []
    return seen


def _http_reason(status: int) -> str:
    if status == 401:
        return "private"
    if status in (404, 410):
        return "unavailable"
    if status == 451:
        return "geo-blocked"
    if status == 429:
        return "rate-limit"
    if status in (403, 408) or status >= 500:
        return "network"  # YouTube media URLs answer 403 when throttled or expired
    return "other"


def classify_error(exc: BaseException) -> str:
    """Failure reason (one of :data:`REASONS`) for an exception raised by yt-dlp."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError
    from yt_dlp.utils import ContentTooShortError, ExtractorError, GeoRestrictedError

    chain = _chain(exc)
    if any(isinstance(e, GeoRestrictedError) for e in chain):
        return "geo-blocked"
    text = " ".join(str(e) for e in chain).lower()
    for reason, needles in _MESSAGE_REASONS[:-1]:  # all but the generic network words
        if any(n in text for n in needles):
            return reason
    for e in chain:
        if isinstance(e, HTTPError):
            return _http_reason(e.status)
        if isinstance(e, TransportError | ContentTooShortError | TimeoutError | ConnectionError):
            return "network"
    if any(n in text for n in _MESSAGE_REASONS[-1][1]):
        return "network"
    if any(isinstance(e, ExtractorError) for e in chain):
        return "extractor"
    return "other"
