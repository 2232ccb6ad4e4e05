"""Clip lists, downloads, media decoding, the dataset, the embedded synthetic dataset, manifests
and local sources.

- :mod:`.classes`: Class names of each dataset, in the index order of the models' outputs.
- :mod:`.clips`: The preprocessed clip folder: its files, and reading them without decoding more
  than asked.
- :mod:`.dataset`: The Dataset over preprocessed clips: one audio window and one frame per item.
- :mod:`.download`: Download clips with yt-dlp, one at a time, recording every failure instead
  of stopping.
- :mod:`.failures`: Why a clip's download failed: the reasons, reading yt-dlp's errors, and the
  failures CSV.
- :mod:`.fetch`: Downloads that land only when verified: the bytes of a URL, checked before they
  are kept;.
- :mod:`.lists`: Public dataset lists: checksummed download and parsers (clip records:
  :mod:`.records`).
- :mod:`.local`: Clips the user already has: a folder of a listed dataset's videos, or an own-
  dataset CSV.
- :mod:`.manifests`: Per-split manifests and the exclusion list, merged from the workflow's
  shards.
- :mod:`.media`: Decode one video into a clip folder (:mod:`avmodels.data.clips`): 11025 Hz mono
  + 8 fps.
- :mod:`.preprocess`: Preprocess many clips without stopping on a bad one, and ``avrobust
  preprocess`` for one.
- :mod:`.probing`: ffmpeg for the data steps: the program itself, and what a media file holds
  (no ffprobe).
- :mod:`.records`: Clip records of the paper's splits, built from the parsed lists
  (:mod:`.lists`), and their.
- :mod:`.synthetic`: The embedded dataset ``synthetic_music``: procedural audio-visual clips
  rendered to mp4.
- :mod:`.weights`: Pretrained visual weights: torchvision's ImageNet ResNet18, fetched once and
  verified.

Public names are exported lazily: importing the package imports none of its
modules; ``from avmodels.<package> import name`` imports the one defining ``name``.
"""

from __future__ import annotations

from avmodels import lazy_exports

_SUBMODULES = (
    "classes",
    "clips",
    "dataset",
    "download",
    "failures",
    "fetch",
    "lists",
    "local",
    "manifests",
    "media",
    "preprocess",
    "probing",
    "records",
    "synthetic",
    "weights",
)
_EXPORTS = {  # public name -> the module defining it
    "AUDIO_FILE": "clips",
    "AVDataset": "dataset",
    "AVE_CATEGORIES": "lists",
    "AveAnnotation": "lists",
    "BAD_TIME": "records",
    "BadRow": "lists",
    "CLASSES": "classes",
    "CLIP_FILES": "clips",
    "CLIP_ID": "download",
    "ClipDirError": "media",
    "ClipInfo": "media",
    "ClipLike": "preprocess",
    "ClipRecord": "records",
    "ClipSource": "download",
    "ClipSpec": "synthetic",
    "DECODE_TIMEOUT": "media",
    "DEFAULT_COUNTS": "synthetic",
    "DEFAULT_DURATION": "synthetic",
    "DEFAULT_FORMAT": "download",
    "DEFAULT_SIZE": "synthetic",
    "DENO_MIN_VERSION": "download",
    "Difficulty": "synthetic",
    "DiskFullError": "media",
    "DownloadStopped": "download",
    "DownloadSummary": "download",
    "EDGE_SECONDS": "dataset",
    "EMPTY_AVE_EVENT": "records",
    "EXCLUSION_COLUMNS": "records",
    "EmptySplit": "dataset",
    "Exclusion": "records",
    "FAILURE_COLUMNS": "lists",
    "FORMAT_VERSION": "clips",
    "FRAMES_FILE": "clips",
    "GROUP_HUES": "synthetic",
    "GROUP_SHAPES": "synthetic",
    "ID_PATTERN": "lists",
    "IMAGENET_FILE": "weights",
    "IMAGENET_SHA256": "weights",
    "IMAGENET_URL": "weights",
    "INCOMPLETE": "download",
    "INDEX_FILE": "clips",
    "INFO_FILE": "clips",
    "JPEG_QUALITY": "media",
    "KineticsAnnotation": "lists",
    "LIST_NAMES": "lists",
    "ListChecksumError": "lists",
    "ListFormatError": "lists",
    "LocalClip": "local",
    "MANIFEST_COLUMNS": "manifests",
    "MAX_SHORT_SIDE": "media",
    "MIN_DURATION": "media",
    "MediaError": "probing",
    "NOT_DOWNLOADED": "preprocess",
    "NOT_IN_AUDIOSET": "records",
    "NOT_IN_AVE": "records",
    "NOT_IN_FOLDER": "local",
    "NOT_IN_KINETICS": "records",
    "NOT_IN_MUSIC": "records",
    "NO_SUCH_FILE": "local",
    "OBJECT_RADIUS": "synthetic",
    "PERMANENT": "failures",
    "PITCH_CENTRES": "synthetic",
    "PROBE_TIMEOUT": "probing",
    "RECORDS_FILE": "synthetic",
    "RECORD_COLUMNS": "records",
    "REQUIRED_COLUMNS": "dataset",
    "RETRIED": "failures",
    "Resolver": "records",
    "RuntimeMissing": "download",
    "SHORT_TOLERANCE": "media",
    "SOURCE_COLUMNS": "local",
    "SPLIT_PRIORITY": "records",
    "SYNTHETIC_CLASSES": "classes",
    "SYNTHETIC_DATASET": "classes",
    "SourceInfo": "probing",
    "SplitRow": "lists",
    "TABLE_SIZE": "synthetic",
    "TRANSIENT": "failures",
    "TRUNCATION_TOLERANCE": "download",
    "VIDEO_EXTENSIONS": "preprocess",
    "VOLUME": "dataset",
    "WeightsDigestError": "weights",
    "YOUTUBE_ID": "download",
    "audio_group": "synthetic",
    "check_target": "media",
    "class_names": "classes",
    "classify_error": "failures",
    "clip_id_of": "lists",
    "crop_to_float": "dataset",
    "csv_classes": "local",
    "cut": "dataset",
    "decode_frame": "dataset",
    "decoded_duration": "probing",
    "deno_path": "download",
    "download_shard": "download",
    "download_verified": "fetch",
    "encode_mp4": "synthetic",
    "ensure_ffmpeg": "probing",
    "fetch_list": "lists",
    "fetch_weights": "weights",
    "find_video": "preprocess",
    "frame_choices": "dataset",
    "frame_count": "clips",
    "generate": "synthetic",
    "index_videos": "local",
    "input_url": "probing",
    "is_clip_dir": "clips",
    "is_disk_full": "media",
    "is_own_clip_dir": "media",
    "iter_kinetics_annotations": "lists",
    "label_index": "classes",
    "load_audio": "clips",
    "load_frame": "clips",
    "load_frames": "clips",
    "main": "preprocess",
    "match_records": "local",
    "merge_manifests": "manifests",
    "num_classes": "classes",
    "one_line": "failures",
    "parse_probe": "probing",
    "pcm16_layout": "dataset",
    "plan_clips": "synthetic",
    "pread": "dataset",
    "preprocess_clip": "media",
    "preprocess_many": "preprocess",
    "probe": "probing",
    "read_audioset_segments": "lists",
    "read_ave_annotations": "lists",
    "read_exclusions": "records",
    "read_failures": "failures",
    "read_info": "clips",
    "read_jpeg": "dataset",
    "read_manifest": "dataset",
    "read_music_videos": "lists",
    "read_own_csv": "local",
    "read_records": "records",
    "read_sources": "local",
    "read_split_csv": "lists",
    "read_window": "dataset",
    "records_with_exclusions": "records",
    "render_audio": "synthetic",
    "render_clip": "synthetic",
    "render_video": "synthetic",
    "require_clips": "dataset",
    "resize_short_side": "dataset",
    "settings": "weights",
    "sha256_file": "fetch",
    "shard_of": "records",
    "shard_options": "download",
    "shard_records": "records",
    "tile": "dataset",
    "valid_times": "lists",
    "verify_sha256": "lists",
    "visual_group": "synthetic",
    "visual_weights_file": "weights",
    "window_start": "dataset",
    "write_done_list": "download",
    "write_exclusions": "records",
    "write_failures": "failures",
    "write_records": "records",
    "write_sources": "local",
}
__all__ = [*_SUBMODULES, *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES, _EXPORTS, globals())
