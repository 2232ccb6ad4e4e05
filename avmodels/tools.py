"""Small setup helpers run from the Makefile (``python -m avmodels.tools``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def link_ffmpeg(bin_dir: Path) -> Path:
    """Expose the ``imageio-ffmpeg`` static binary as ``bin_dir/ffmpeg``.

    yt-dlp looks for a program named ``ffmpeg`` on PATH when it cuts
    download sections; the wheel ships the binary under another name.
    """
    import imageio_ffmpeg

    target = Path(imageio_ffmpeg.get_ffmpeg_exe())
    link = Path(bin_dir) / "ffmpeg"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target, link)
    return link


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avmodels.tools")
    sub = parser.add_subparsers(dest="command", required=True)
    ff = sub.add_parser("link-ffmpeg", help="link the bundled ffmpeg into a bin directory")
    ff.add_argument("bin_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "link-ffmpeg":
        print(link_ffmpeg(args.bin_dir))


if __name__ == "__main__":
    main()
