"""Helpers for tests that stand in for remote hosts: a file server on 127.0.0.1 with a
request log, and short clips rendered with ffmpeg's lavfi sources."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from avmodels.data import probing

CONTAINERS = {  # extension -> ffmpeg codec arguments
    ".mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    ".mkv": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "flac"],
    ".webm": ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"],
    ".avi": ["-c:v", "mpeg4", "-c:a", "libmp3lame"],
}


def render(
    path: Path, k: int = 0, seconds: float = 1.5, audio: bool = True, size: str = "48x32"
) -> Path:
    """A test-pattern clip (hue and tone set by ``k``) in the container of ``path``'s suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [probing.ensure_ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i"]
    cmd += [f"testsrc=size={size}:rate=10:duration={seconds},hue=h={k * 37}"]
    if audio:
        tone = f"sine=frequency={200 + 60 * k}:sample_rate=16000:duration={seconds}"
        cmd += ["-f", "lavfi", "-i", tone]
    codecs = CONTAINERS[path.suffix]
    if not audio:
        codecs = codecs[: codecs.index("-c:a")] + ["-an"]
    subprocess.run([*cmd, "-pix_fmt", "yuv420p", *codecs, str(path)], check=True)
    return path


class FileServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path without the leading slash -> bytes); anything else is 404.

    Every GET is logged in ``requests`` (the path asked for)."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.requests: list[str] = []
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def counts(self) -> Counter:
        with self.lock:
            return Counter(self.requests)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0].lstrip("/")
        with self.server.lock:
            self.server.requests.append(path)
        body = self.server.files.get(path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(files: dict[str, bytes]) -> Iterator[FileServer]:
    """A :class:`FileServer` running in a thread for the ``with`` block."""
    srv = FileServer(files)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
