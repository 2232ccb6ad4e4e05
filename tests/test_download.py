"""download_shard against a local HTTP server serving generated media (no internet)."""

from __future__ import annotations

import csv
import http.server
import os
import socket
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from yt_dlp.networking.common import Response
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from avmodels.data import download, failures, probing
from avmodels.data.records import ClipRecord
from avmodels.settings import DownloadSettings

GOOD, GOOD2 = "goodclip000", "goodclip-_1"
BAD = {  # served id -> reason it must be recorded with
    "notfound404": "unavailable",
    "refused0000": "network",
    "truncated00": "network",
    "corruptfile": "corrupt",
    "zerolength0": "corrupt",
    "noaudio0000": "no audio",
    "audioonly00": "no video",
}


def _make(path: Path, seconds: float, video: bool = True, audio: bool = True) -> Path:
    cmd = [probing.ensure_ffmpeg(), "-v", "error", "-y"]
    if video:
        cmd += ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=25:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=22050:duration={seconds}"]
    if video:
        cmd += ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25"]
    if audio:
        cmd += ["-c:a", "aac"]
    subprocess.run([*cmd, "-movflags", "+faststart", str(path)], check=True)
    return path


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes], closed_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.closed_port = files, closed_port
        self.requests: list[str] = []
        self.lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(self.path)
        name = self.path.lstrip("/").split("?")[0].removesuffix(".mp4")
        if name == "refused0000":  # send the client to a port where nothing listens
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.closed_port}/x.mp4")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if name.startswith("throttle"):  # YouTube's answer to too many requests
            self.send_error(429)
            return
        body = self.server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name == "truncated00":  # promise the whole file, send half, close
            body = body[: len(body) // 2]
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("served")
    good = _make(root / "good.mp4", 4.0).read_bytes()
    files = {
        GOOD: good,
        GOOD2: good,
        "truncated00": good,
        "corruptfile": np.random.default_rng(0).bytes(4096),
        "zerolength0": b"",
        "noaudio0000": _make(root / "noaudio.mp4", 4.0, audio=False).read_bytes(),
        "audioonly00": _make(root / "audioonly.mp4", 4.0, video=False).read_bytes(),
    }
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    srv = _Server(files, closed_port)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@dataclass(frozen=True)
class Clip:
    """A record that, unlike ClipRecord, accepts any ID (as a hostile list could hold)."""

    youtube_id: str
    start: float | None = None
    end: float | None = None

    @property
    def clip_id(self) -> str:
        return self.youtube_id if self.start is None else f"{self.youtube_id}_{self.start:.0f}"


def _template(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/{{id}}.mp4"


def _failures(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len({r["clip_id"] for r in rows}), "one row per clip"
    return {r["clip_id"]: r for r in rows}


def _shard(srv: _Server, clips, out: Path, **kw) -> download.DownloadSummary:
    kw = {"retries": 1, "backoff": 0.01, "socket_timeout": 5.0, "progress": False, **kw}
    return download.download_shard(
        clips, out / "videos", out / "failures.csv", _template(srv), **kw
    )


def test_shard_records_every_failure_and_resumes(server: _Server, tmp_path: Path) -> None:
    good = ClipRecord("music", "flute", GOOD, 0.5, 3.0, "train")  # the real record class
    clips = [good, Clip(GOOD2), Clip("../x"), Clip("--exec"), *(Clip(i, 0.0, 4.0) for i in BAD)]
    summary = _shard(server, clips, tmp_path)
    assert summary.downloaded == 2 and summary.requested == len(clips)
    assert summary.failed == Counter({**Counter(BAD.values()), "invalid id": 2})

    videos = tmp_path / "videos"
    assert sorted(p.name for p in videos.iterdir()) == [f"{GOOD2}.mp4", f"{good.clip_id}.mp4"]
    src = probing.probe(videos / f"{good.clip_id}.mp4")
    assert src.audio_index is not None and src.video_index is not None
    assert probing.decoded_duration(videos / f"{good.clip_id}.mp4") == pytest.approx(2.5, abs=0.3)
    assert probing.decoded_duration(videos / f"{GOOD2}.mp4") == pytest.approx(4.0, abs=0.2)

    rows = _failures(tmp_path / "failures.csv")
    permanent = {i: r for i, r in BAD.items() if r not in failures.TRANSIENT}
    assert {k: r["reason"] for k, r in rows.items()} == {
        "../x": "invalid id",
        "--exec": "invalid id",
        **{Clip(i, 0.0, 4.0).clip_id: reason for i, reason in permanent.items()},
    }, "transient failures are never recorded"
    assert all("\n" not in r["message"] and r["message"] for r in rows.values())
    hits = Counter(server.requests)
    assert not any("exec" in p or ".." in p for p in hits), "invalid IDs never requested"
    assert hits["/truncated00.mp4"] >= 2, "network failures are retried"
    assert hits["/corruptfile.mp4"] <= 2, "a corrupt file is not retried"

    before = len(server.requests)
    again = _shard(server, clips, tmp_path, retries=0)
    new = {p.split("/")[1] for p in server.requests[before:]}
    assert new == {"refused0000.mp4", "truncated00.mp4"}, "a re-run retries transient only"
    assert again.already_done == 2 and again.previously_failed == len(permanent)
    assert again.failed == Counter({"network": 2, "invalid id": 2})
    assert _failures(tmp_path / "failures.csv") == rows

    before = len(server.requests)
    retried = _shard(server, clips, tmp_path, retry_reasons={"corrupt"}, retries=0)
    new = {p.split("/")[1] for p in server.requests[before:]}
    assert new == {"refused0000.mp4", "truncated00.mp4", "corruptfile.mp4", "zerolength0.mp4"}
    assert retried.failed == Counter({"network": 2, "corrupt": 2, "invalid id": 2})


def test_circuit_breaker_stops_a_throttled_shard(server: _Server, tmp_path: Path) -> None:
    throttled = [Clip(f"throttle{k:03d}") for k in range(6)]
    before = len(server.requests)
    with pytest.raises(download.DownloadStopped) as stop:
        _shard(server, [*throttled, Clip(GOOD)], tmp_path, stop_after=3)
    message = str(stop.value)
    assert "\n" not in message and "3 clips in a row failed with rate-limit" in message
    assert "download.cookies" in message and "download.sleep_requests" in message
    asked = {p.split("/")[1].removesuffix(".mp4") for p in server.requests[before:]}
    assert asked == {c.youtube_id for c in throttled[:3]}, "stops at the third in a row"
    assert _failures(tmp_path / "failures.csv") == {}, "nothing recorded as failed"

    # failures that are not in a row do not trip it; a success resets the count
    mixed = [*throttled[:2], Clip(GOOD), *throttled[2:4], Clip("notfound404")]
    summary = _shard(server, mixed, tmp_path, stop_after=3)
    assert summary.failed == Counter({"rate-limit": 4, "unavailable": 1})
    assert summary.downloaded == 1
    assert {r["reason"] for r in _failures(tmp_path / "failures.csv").values()} == {"unavailable"}


def test_bad_ids_and_ranges_become_failure_rows(server: _Server, tmp_path: Path) -> None:
    clips = [
        Clip(GOOD, 1.0, 2.5),
        Clip("../x", 0.0, 10.0),
        Clip("--exec", 0.0, 10.0),
        Clip("abcdefghij1", 5.0, 2.0),  # ends before it starts
        Clip("abcdefghij2", -1.0, 2.0),
        Clip("abcdefghij3", 1.0, float("inf")),
        Clip(GOOD, 1.0, 2.5),
    ]
    summary = _shard(server, clips, tmp_path)
    assert summary.downloaded == 1 and summary.requested == 6  # the repeated clip once
    reasons = {r["youtube_id"]: r["reason"] for r in _failures(tmp_path / "failures.csv").values()}
    assert reasons == {
        "../x": "invalid id",
        "--exec": "invalid id",
        "abcdefghij1": "malformed",
        "abcdefghij2": "malformed",
        "abcdefghij3": "malformed",
    }
    assert (tmp_path / "videos" / f"{Clip(GOOD, 1.0, 2.5).clip_id}.mp4").is_file()


def test_ranges_work_without_ffmpeg_on_path(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """yt-dlp cuts sections with a program named ffmpeg: ensure_ffmpeg provides one."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    summary = _shard(server, [Clip(GOOD, 1.0, 3.0)], tmp_path, format="worst")
    assert summary.downloaded == 1
    assert os.environ["PATH"].startswith(str(tmp_path / "cache"))
    got = probing.decoded_duration(tmp_path / "videos" / f"{GOOD}_1.mp4")
    assert got == pytest.approx(2.0, abs=0.3)


@pytest.mark.parametrize(
    ("youtube_id", "ok"),
    [
        ("dQw4w9WgXcQ", True),
        ("-_-_-_-_-_-", True),
        ("../x", False),
        ("--exec", False),
        ("dQw4w9WgXcQ1", False),
        ("dQw4w9WgXc", False),
        ("dQw4w9WgX/Q", False),
        ("dQw4w9WgXc\n", False),
        ("dQw4 9WgXcQ", False),
    ],
)
def test_youtube_id_pattern(youtube_id: str, ok: bool) -> None:
    assert (download._check(Clip(youtube_id)) is None) == ok


def _response(status: int) -> Response:
    import io

    return Response(io.BytesIO(b""), "https://example.invalid/", {}, status=status)


# One yt-dlp message of each kind, as yt-dlp words it.
CLASSIFIED = [
    (ExtractorError("Private video. Sign in if you've been granted access"), "private"),
    (ExtractorError("Video unavailable. This video is private"), "private"),
    (
        ExtractorError("Video unavailable. This video has been removed by the uploader"),
        "unavailable",
    ),
    (
        ExtractorError(
            "Video unavailable. This video is no longer available because the "
            "YouTube account associated with this video has been terminated."
        ),
        "unavailable",
    ),
    (
        ExtractorError("Sign in to confirm your age. This video may be inappropriate"),
        "age-restricted",
    ),
    (GeoRestrictedError("The uploader has not made this video available"), "geo-blocked"),
    (
        ExtractorError(
            "Video unavailable. The uploader has not made this video available in your country"
        ),
        "geo-blocked",
    ),
    (DownloadError("ERROR: ffmpeg exited with code 183"), "corrupt"),
    (
        ExtractorError(
            "Requested format is not available. Use --list-formats for a list of available formats"
        ),
        "format",
    ),
    (
        ExtractorError(
            "[youtube] dQw4w9WgXcQ: n challenge solving failed: Some formats may "
            "be missing. Ensure you have a supported JavaScript runtime"
        ),
        "runtime",
    ),
    (
        ExtractorError(
            "[youtube] dQw4w9WgXcQ: Signature extraction failed: Some formats may be missing"
        ),
        "runtime",
    ),
    (ExtractorError("[youtube] dQw4w9WgXcQ: Unable to extract yt initial data"), "extractor"),
    (
        ExtractorError(
            "[youtube] dQw4w9WgXcQ: Video unavailable. This content isn't "
            "available, try again later. The current session has been "
            "rate-limited by YouTube for up to an hour."
        ),
        "rate-limit",
    ),
    (ExtractorError("Unable to download", cause=HTTPError(_response(429))), "rate-limit"),
    (
        ExtractorError(
            "[youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. Use "
            "--cookies-from-browser or --cookies for the authentication."
        ),
        "bot-check",
    ),
    (DownloadError("ERROR: ffmpeg exited with code 1"), "network"),
    (ExtractorError("Unable to download", cause=HTTPError(_response(404))), "unavailable"),
    (ExtractorError("Unable to download", cause=HTTPError(_response(503))), "network"),
    (ExtractorError("x", cause=TransportError("[Errno 111] Connection refused")), "network"),
    (ValueError("something else"), "other"),
]


@pytest.mark.parametrize(("exc", "reason"), CLASSIFIED)
def test_classify_error(exc: BaseException, reason: str) -> None:
    wrapped = DownloadError(f"ERROR: {exc}", exc_info=(type(exc), exc, None))
    assert failures.classify_error(wrapped) == reason
    assert reason in failures.REASONS


def test_failure_classes() -> None:
    """Only the video's own state is permanent; throttling and network never are."""
    assert {"rate-limit", "bot-check", "network"} == failures.TRANSIENT
    assert failures.PERMANENT.isdisjoint({"format", "runtime", "extractor", "other"})
    assert failures.PERMANENT.isdisjoint(failures.TRANSIENT)
    assert {"private", "unavailable", "geo-blocked"} <= failures.PERMANENT
    assert {r for _, r in CLASSIFIED} <= set(failures.REASONS)


def _fake_deno(path: Path, version: str) -> str:
    path.write_text(f"#!/bin/sh\necho 'deno {version} (stable, release, x86_64)'\n")
    path.chmod(0o755)
    return str(path)


def test_deno_is_found_and_checked(tmp_path: Path) -> None:
    """The project's deno is found without PATH; a missing or old one stops in one line."""
    found = download.deno_path()
    out = subprocess.run([found, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("deno ")
    assert download.deno_path(_fake_deno(tmp_path / "new", "2.9.8")) == str(tmp_path / "new")
    for path in (_fake_deno(tmp_path / "old", "1.46.3"), str(tmp_path / "none")):
        with pytest.raises(download.RuntimeMissing) as err:
            download.deno_path(path)
        assert "\n" not in str(err.value) and "pip install -e ." in str(err.value)


def test_shard_options_map_the_config_section(tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n")
    deno = _fake_deno(tmp_path / "deno", "2.5.0")
    got = shard_options(
        {
            "cookies": str(cookies),
            "sleep_requests": 1.5,
            "sleep_downloads": 4,
            "rate_limit": 500000,
            "retries": 2,
            "retry": ["format"],
            "stop_after": 5,
            "js_runtime": deno,
        }
    )
    assert got == {
        "retries": 2,
        "retry_reasons": ("format",),
        "stop_after": 5,
        "js_runtime": deno,
        "ydl_options": {
            "cookiefile": str(cookies),
            "sleep_interval_requests": 1.5,
            "sleep_interval": 4.0,
            "ratelimit": 500000,
        },
    }
    defaults = shard_options({"js_runtime": deno})
    assert defaults["retry_reasons"] == failures.RETRIED and defaults["ydl_options"] == {}
    with pytest.raises(FileNotFoundError, match="download.cookies"):
        shard_options({"cookies": str(tmp_path / "none.txt"), "js_runtime": deno})


def shard_options(section: dict) -> dict:
    """:func:`download.shard_options` of a ``download:`` config section."""
    return download.shard_options(DownloadSettings.from_config(section))


def test_js_runtime_reaches_yt_dlp(server: _Server, tmp_path: Path, monkeypatch) -> None:
    """The shard hands yt-dlp exactly the deno it was given."""
    from yt_dlp import YoutubeDL

    seen = []
    init = YoutubeDL.__init__

    def spy(self, params=None, *args, **kw):
        seen.append((params or {}).get("js_runtimes"))
        init(self, params, *args, **kw)

    monkeypatch.setattr(YoutubeDL, "__init__", spy)
    deno = _fake_deno(tmp_path / "deno", "2.9.8")
    _shard(server, [Clip(GOOD)], tmp_path, js_runtime=deno)
    assert seen == [{"deno": {"path": deno}}]
