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

from avmodels import download, media
from avmodels.data import ClipRecord

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
    cmd = [media.ensure_ffmpeg(), "-v", "error", "-y"]
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
    src = media.probe(videos / f"{good.clip_id}.mp4")
    assert src.audio_index is not None and src.video_index is not None
    assert media.decoded_duration(videos / f"{good.clip_id}.mp4") == pytest.approx(2.5, abs=0.3)
    assert media.decoded_duration(videos / f"{GOOD2}.mp4") == pytest.approx(4.0, abs=0.2)

    rows = _failures(tmp_path / "failures.csv")
    assert {k: r["reason"] for k, r in rows.items()} == {
        "../x": "invalid id",
        "--exec": "invalid id",
        **{Clip(i, 0.0, 4.0).clip_id: reason for i, reason in BAD.items()},
    }
    assert "truncated" in rows[Clip("truncated00", 0.0, 4.0).clip_id]["message"]
    assert all("\n" not in r["message"] and r["message"] for r in rows.values())
    hits = Counter(server.requests)
    assert not any("exec" in p or ".." in p for p in hits), "invalid IDs never requested"
    assert hits["/truncated00.mp4"] >= 2, "network failures are retried"
    assert hits["/corruptfile.mp4"] <= 2, "a corrupt file is not retried"

    before = len(server.requests)
    again = _shard(server, clips, tmp_path)
    assert len(server.requests) == before, "a re-run requests nothing"
    assert again.already_done == 2 and again.previously_failed == len(BAD)
    assert _failures(tmp_path / "failures.csv") == rows

    retried = _shard(server, clips, tmp_path, retry_reasons={"network"}, retries=0)
    new = {p.split("/")[1] for p in server.requests[before:]}
    assert new == {"refused0000.mp4", "truncated00.mp4"}
    assert retried.failed == Counter({"network": 2, "invalid id": 2})


def test_malformed_list_lines_become_rows(server: _Server, tmp_path: Path) -> None:
    lst = tmp_path / "shard.csv"
    lst.write_text(
        "youtube_id,start,end\n"
        f"{GOOD},1.0,2.5\n"
        "../x,0,10\n"
        "--exec,0,10\n"
        "abcdefghijk,zero,10\n"
        "abcdefghij1,5,2\n"
        "abcdefghij2,1,2,3,4\n"
        "abcdefghij3\n"
        "\n"
        f"{GOOD},1.0,2.5\n"
    )
    clips = download.read_clip_list(lst)
    summary = _shard(server, clips, tmp_path)
    assert summary.downloaded == 1 and summary.requested == 7
    reasons = {r["youtube_id"]: r["reason"] for r in _failures(tmp_path / "failures.csv").values()}
    assert reasons == {
        "../x": "invalid id",
        "--exec": "invalid id",
        "abcdefghijk": "malformed",
        "abcdefghij1": "malformed",
        "abcdefghij2": "malformed",
        "abcdefghij3": "malformed",
    }
    assert (tmp_path / "videos" / f"{GOOD}_0001000_0002500.mp4").is_file()


def test_ranges_work_without_ffmpeg_on_path(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """yt-dlp cuts sections with a program named ffmpeg: ensure_ffmpeg provides one."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    summary = _shard(server, [Clip(GOOD, 1.0, 3.0)], tmp_path, format="worst")
    assert summary.downloaded == 1
    assert os.environ["PATH"].startswith(str(tmp_path / "cache"))
    got = media.decoded_duration(tmp_path / "videos" / f"{GOOD}_1.mp4")
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


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ExtractorError("Private video. Sign in if you've been granted access"), "private"),
        (ExtractorError("Video unavailable. This video is private"), "private"),
        (
            ExtractorError("Video unavailable. This video has been removed by the uploader"),
            "unavailable",
        ),  # fmt: skip
        (
            ExtractorError("Sign in to confirm your age. This video may be inappropriate"),
            "age-restricted",
        ),  # fmt: skip
        (ExtractorError("Sign in to confirm you’re not a bot"), "bot-check"),
        (GeoRestrictedError("The uploader has not made this video available"), "geo-blocked"),
        (DownloadError("ERROR: ffmpeg exited with code 183"), "corrupt"),
        (DownloadError("ERROR: ffmpeg exited with code 1"), "network"),
        (ExtractorError("Unable to download", cause=HTTPError(_response(404))), "unavailable"),
        (ExtractorError("Unable to download", cause=HTTPError(_response(429))), "network"),
        (ExtractorError("Unable to download", cause=HTTPError(_response(503))), "network"),
        (ExtractorError("x", cause=TransportError("[Errno 111] Connection refused")), "network"),
        (ValueError("something else"), "other"),
    ],
)
def test_classify_error(exc: BaseException, reason: str) -> None:
    wrapped = DownloadError(f"ERROR: {exc}", exc_info=(type(exc), exc, None))
    assert download.classify_error(wrapped) == reason
    assert reason in download.REASONS
