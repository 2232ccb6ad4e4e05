"""The download step through a real Snakemake, against a server on 127.0.0.1 that stands
in for the list hosts and for YouTube: the pre-flight, a head process killed mid-shard,
and reruns only for changes of what is downloaded."""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from served import render
from studies import REPO, _env, copy_workflow, snakemake, tail

TARGET = "resources/music/downloads/shard0.csv"
SPLIT_IDS = {"train": ["trainclip00", "trainclip01"], "val": ["valclip0000"], "test": []}
SLOW = "slowclip000"  # the clip in flight when the head process is killed
NEW = "newclip0000"


def _split_csv(ids: list[str]) -> bytes:
    rows = [f"/data/audio/flute/{i}.wav,/data/frames/flute/{i}.mp4,80\n" for i in ids]
    return "".join(rows).encode()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.run = 0
        self.requests: list[tuple[int, str]] = []
        self.hold = False  # hold the next request for SLOW until released
        self.holding, self.release = threading.Event(), threading.Event()
        self.lock = threading.Lock()

    def clip_requests(self, run: int | None = None) -> Counter:
        """Clip ID -> requests (of one run, or of all)."""
        with self.lock:
            paths = [p for r, p in self.requests if run is None or r == run]
        return Counter(p.removesuffix(".mp4") for p in paths if p.endswith(".mp4"))

    def runs_of(self, clip: str) -> set[int]:
        with self.lock:
            return {r for r, p in self.requests if p == f"{clip}.mp4"}


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0].lstrip("/")
        with self.server.lock:
            self.server.requests.append((self.server.run, path))
            hold = self.server.hold and path == f"{SLOW}.mp4"
            self.server.hold = self.server.hold and not hold
        if hold:
            self.server.holding.set()
            self.server.release.wait(120)
            return  # closes without an answer: the client was killed meanwhile
        body = self.server.files.get(path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def server(tmp_path: Path):
    clip = render(tmp_path / "clip.mp4", seconds=1, size="32x24")
    data = clip.read_bytes()
    files = {f"{i}.mp4": data for i in (*sum(SPLIT_IDS.values(), []), SLOW, NEW)}
    files |= {f"lists/{s}.csv": _split_csv(ids) for s, ids in SPLIT_IDS.items()}
    srv = _Server(files)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def _configure(root: Path, srv: _Server, **download: object) -> None:
    """A study of one YouTube dataset whose lists and clips come from ``srv``."""
    config = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    lists = {
        s: {"url": f"{base}/lists/{s}.csv", "sha256": hashlib.sha256(body).hexdigest()}
        for s, body in ((s, srv.files[f"lists/{s}.csv"]) for s in SPLIT_IDS)
    }
    config["datasets"] = {
        "music": {"source": "youtube", "lists": lists, "url_template": f"{base}/{{id}}.mp4"}
    }
    config["tables"] = {t: {"music": "music"} for t in config["tables"]}
    config["download"] = {"min_free_gb": 0, "retries": 0, **download}
    (root / "study.yaml").write_text(yaml.safe_dump(config))


def _serve_list(srv: _Server, split: str, ids: list[str]) -> None:
    srv.files[f"lists/{split}.csv"] = _split_csv(ids)


def _download(root: Path, srv: _Server, *args: str) -> subprocess.CompletedProcess[str]:
    srv.run += 1
    return snakemake(root, TARGET, "--cores", "1", *args, configfile="study.yaml")


def _store(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "resources/music/videos/shard0").glob("*.mp4"))


@pytest.mark.slow
def test_preflight_stops_before_any_job(server: _Server, tmp_path: Path) -> None:
    root = copy_workflow(REPO, tmp_path / "wf")
    _configure(root, server, js_runtime=str(tmp_path / "no" / "deno"))
    done = _download(root, server)
    assert done.returncode != 0
    lines = [line for line in done.stdout.splitlines() if line.startswith("pre-flight:")]
    assert len(lines) == 1 and "does not run" in lines[0] and "download.js_runtime" in lines[0]
    assert server.requests == [], "no job ran: no list was fetched"
    assert not (root / "resources").exists() and not (root / "logs").exists()

    _configure(root, server, min_free_gb=1e9)  # a disk the study cannot have
    done = _download(root, server)
    lines = [line for line in done.stdout.splitlines() if line.startswith("pre-flight:")]
    assert done.returncode != 0 and len(lines) == 1 and "GB free" in lines[0]
    assert server.requests == []

    _configure(root, server)  # the deno the project installs is found; the lock is free
    done = _download(root, server)
    assert done.returncode == 0, tail(done.stdout)
    assert "pre-flight: JavaScript runtime" in done.stdout and "deno" in done.stdout


def _kill_when_held(root: Path, srv: _Server) -> None:
    """Start the download, kill the head process (its whole group) while SLOW is in flight."""
    srv.run += 1
    srv.hold = True
    cmd = [sys.executable, "-m", "snakemake", TARGET, "--cores", "1"]
    proc = subprocess.Popen(
        [*cmd, "--configfile", "study.yaml"],
        cwd=root,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert srv.holding.wait(300), "the download never reached the held clip"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)
        srv.release.set()
    time.sleep(0.2)


@pytest.mark.slow
def test_downloads_survive_snakemake(server: _Server, tmp_path: Path) -> None:
    root = copy_workflow(REPO, tmp_path / "wf")
    _serve_list(server, "test", [SLOW])
    _configure(root, server)
    _kill_when_held(root, server)
    first = sorted(server.clip_requests(1))
    assert first == sorted([*SPLIT_IDS["train"], *SPLIT_IDS["val"], SLOW])
    assert _store(root) == sorted([*SPLIT_IDS["train"], *SPLIT_IDS["val"]])

    unlock = snakemake(root, TARGET, "--unlock", configfile="study.yaml")  # the kill's lock
    assert unlock.returncode == 0, tail(unlock.stdout)
    done = _download(root, server, "--rerun-incomplete")
    assert done.returncode == 0, tail(done.stdout)
    assert list(server.clip_requests(2)) == [SLOW], "only the clip in flight is fetched again"
    for clip in [*SPLIT_IDS["train"], *SPLIT_IDS["val"]]:
        assert server.runs_of(clip) == {1}, f"{clip} fetched in one run only"
    assert _store(root) == sorted([*SPLIT_IDS["train"], *SPLIT_IDS["val"], SLOW])
    listed = (root / TARGET).read_text().splitlines()[1:]
    assert sorted(line.split(",")[0] for line in listed) == _store(root)

    # edits of the logging, provenance and preprocessing code plan no download job
    for module in ("workflow/jobs", "provenance", "data/media", "data/probing"):
        path = root / "avmodels" / f"{module}.py"
        path.write_text(path.read_text() + "\nEDITED_FOR_A_TEST = 1\n")
    plan = snakemake(root, TARGET, "--dry-run", configfile="study.yaml")
    assert plan.returncode == 0, tail(plan.stdout)
    assert "Nothing to be done" in plan.stdout, tail(plan.stdout)

    # a new list entry fetches only the new clip
    _serve_list(server, "test", [SLOW, NEW])
    _configure(root, server)  # the list's new digest
    done = _download(root, server)
    assert done.returncode == 0, tail(done.stdout)
    assert list(server.clip_requests(server.run)) == [NEW]
    assert NEW in _store(root)
