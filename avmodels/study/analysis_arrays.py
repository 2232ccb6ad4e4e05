"""The analysis jobs' results as .npz arrays: localization maps and t-SNE embeddings.

Written by the analysis steps, read by :mod:`avmodels.study.figures`; kept apart from the
plotting code so that a figure's style never reruns an analysis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avmodels import atomic

STREAMS = ("audio", "visual", "audio_attacked", "visual_attacked")


def save_localization_npz(
    path: str | Path,
    frames: Mapping[str, np.ndarray],
    attention: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray | float],
    class_names: Sequence[str] | None = None,
    score_name: str = "overlap",
) -> Path:
    """Store localization results in the layout that
    :func:`avmodels.study.figures.plot_localization` reads.

    Keys: ``frames_<mode>`` (K, H, W, 3) uint8 or float in [0, 1] (at least ``clean``),
    ``attention_<mode>`` (N, h, w), ``pred_<mode>`` (N,), ``labels`` (N,),
    ``score_<mode>`` (N,) or scalar, optional ``class_names`` (C,) and ``score_name``.
    """
    arrays: dict[str, np.ndarray] = {"labels": np.asarray(labels)}
    for prefix, values in (
        ("frames", frames),
        ("attention", attention),
        ("pred", predictions),
        ("score", scores),
    ):
        arrays.update({f"{prefix}_{m}": np.asarray(v) for m, v in values.items()})
    if class_names is not None:
        arrays["class_names"] = np.asarray(list(class_names), dtype=str)
    arrays["score_name"] = np.asarray(score_name)
    path = Path(path)
    with atomic.writing(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load_arrays(source: str | Path | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (or of a mapping) as a plain dict."""
    if isinstance(source, Mapping):
        return {k: np.asarray(v) for k, v in source.items()}
    with np.load(source, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_tsne_npz(
    path: str | Path,
    features: Mapping[str, Mapping[str, np.ndarray]],
    labels: np.ndarray,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Store embeddings in the layout :func:`avmodels.study.figures.plot_tsne` reads.

    ``features``: model -> stream -> (N, d), streams from :data:`STREAMS`; stored as keys
    ``<model>__<stream>``, with ``labels`` (N,) and optional ``class_names`` (C,).
    """
    arrays = {"labels": np.asarray(labels)}
    for model, streams in features.items():
        for stream, values in streams.items():
            if stream not in STREAMS:
                raise ValueError(f"unknown stream {stream!r}; valid: {', '.join(STREAMS)}")
            arrays[f"{model}__{stream}"] = np.asarray(values, dtype=np.float32)
    if class_names is not None:
        arrays["class_names"] = np.asarray(list(class_names), dtype=str)
    path = Path(path)
    with atomic.writing(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path
