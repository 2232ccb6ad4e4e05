"""Figures of Tian & Xu, CVPR 2021 (arXiv:2104.02000), drawn from this run's outputs.

- :func:`plot_budget_curves` (Fig. 3, 7, 8): accuracy vs attack strength (x = eps x 1e3)
  under FGSM / PGD / MIM; panels for the audio, visual and audio-visual attack
  (eps_a = eps_v), the audio-visual model beside the unimodal models.
- :func:`plot_localization` (Fig. 4, 9): frames with the localization model's attention,
  clean and under A, V and AV attacks, with a measured localization score.
- :func:`plot_tsne` (Fig. 5, 10, 11): t-SNE of audio and visual embeddings without and with
  MinSim, optionally with attacked audio (Fig. 10) or attacked visual (Fig. 11) embeddings.

Every figure is written as PNG and PDF with fixed metadata, so equal inputs give equal bytes.
Matplotlib is used through ``Figure`` objects only (no pyplot state, Agg for PNG).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from avmodels import atomic
from avmodels.registry import ATTACKS
from avmodels.study.analysis_arrays import load_arrays
from avmodels.study.paper import dataset_name
from avmodels.study.tables import as_evaluations

log = logging.getLogger(__name__)

RC = {"svg.hashsalt": "avmodels", "pdf.fonttype": 42, "font.size": 8, "axes.titlesize": 7}
DPI = 150
MODES = ("clean", "a", "v", "av")
MODE_TITLES = {"clean": "w/o attack", "a": "audio attack", "v": "visual attack", "av": "AV attack"}
ATTACK_COLORS = dict(zip(ATTACKS, ("tab:blue", "tab:orange", "tab:green"), strict=True))
PNG_METADATA = {"Software": None}
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}


def save_figure(fig: Figure, out_stem: str | Path) -> list[Path]:
    """Write ``<out_stem>.png`` and ``<out_stem>.pdf`` with fixed metadata."""
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")
    with rc_context(RC):
        with atomic.writing(png, "wb") as fh:
            fig.savefig(fh, format="png", dpi=DPI, metadata=PNG_METADATA)
        with atomic.writing(pdf, "wb") as fh:
            fig.savefig(fh, format="pdf", metadata=PDF_METADATA)
    return [png, pdf]


# --- accuracy vs budget (Fig. 3, 7, 8) -------------------------------------------------------


def _mode_eps(frame: pd.DataFrame, mode: str) -> pd.Series:
    return frame["eps_visual"] if mode == "v" else frame["eps_audio"]


def budget_curves(
    evals: pd.DataFrame,
    dataset: str,
    model: str = "concat",
    audio_model: str = "audio",
    visual_model: str = "visual",
    attacks: Sequence[str] = ATTACKS,
) -> pd.DataFrame:
    """The curves' points: ``panel, attack, curve, eps, accuracy`` (eps in input units).

    Panel ``a`` / ``v`` / ``av``: the attacked inputs. Curves: the audio-visual ``model``
    under that attack, the unimodal model(s) of the attacked modality under the attack on
    their input; each curve starts at its clean accuracy (eps 0). Undefended models only.
    """
    evals = as_evaluations(evals)
    ev = evals[(evals["dataset"] == dataset) & (evals["defense"] == "none")]
    plan = {
        "a": [("AV model", model, "a"), ("unimodal A", audio_model, "a")],
        "v": [("AV model", model, "v"), ("unimodal V", visual_model, "v")],
        "av": [
            ("AV model", model, "av"),
            ("unimodal A", audio_model, "a"),
            ("unimodal V", visual_model, "v"),
        ],
    }
    rows = []
    for panel, curves in plan.items():
        for attack in attacks:
            for curve, name, mode in curves:
                part = ev[(ev["model"] == name) & (ev["attack"] == attack) & (ev["mode"] == mode)]
                points = dict(zip(_mode_eps(part, mode), part["accuracy"], strict=True))
                clean = ev[(ev["model"] == name) & (ev["mode"] == "clean")]
                if points and len(clean):
                    points.setdefault(0.0, float(clean.sort_values("eps")["accuracy"].iloc[0]))
                for eps in sorted(points):
                    rows.append((panel, attack, curve, float(eps), float(points[eps])))
    return pd.DataFrame(rows, columns=["panel", "attack", "curve", "eps", "accuracy"])


def _clean_accuracy(evals: pd.DataFrame, dataset: str, model: str) -> float | None:
    part = evals[
        (evals["dataset"] == dataset)
        & (evals["model"] == model)
        & (evals["defense"] == "none")
        & (evals["mode"] == "clean")
    ]
    return None if part.empty else float(part.sort_values("eps")["accuracy"].iloc[0])


def plot_budget_curves(
    evals: pd.DataFrame,
    dataset: str,
    out_stem: str | Path,
    model: str = "concat",
    audio_model: str = "audio",
    visual_model: str = "visual",
    attacks: Sequence[str] = ATTACKS,
) -> list[Path]:
    """Fig. 3 / 7 / 8: accuracy (%) vs attack strength (x 1e-3) for one dataset.

    Colour: attack; line style: model (the audio-visual ``model``, Unimodal A, Unimodal V).
    Sparse dotted black line: the clean accuracy of the unimodal model of the modality left
    clean (panel A: Unimodal V, panel V: Unimodal A), the paper's reference for "an attacked
    modality drags the audio-visual model below the other modality alone".
    """
    evals = as_evaluations(evals)
    data = budget_curves(evals, dataset, model, audio_model, visual_model, attacks)
    styles = {"AV model": ("-", "o"), "unimodal A": ("--", "s"), "unimodal V": (":", "^")}
    references = {"a": visual_model, "v": audio_model}
    panel_titles = {
        "a": "(a) audio attack",
        "v": "(b) visual attack",
        "av": "(c) audio-visual attack",
    }
    with rc_context(RC):
        fig = Figure(figsize=(10, 3.6))
        axes = fig.subplots(1, 3, sharey=True)
        for ax, panel in zip(axes, ("a", "v", "av"), strict=True):
            part = data[data["panel"] == panel]
            for (attack, curve), pts in part.groupby(["attack", "curve"], sort=False):
                line, marker = styles[curve]
                ax.plot(
                    pts["eps"] * 1e3,
                    pts["accuracy"],
                    linestyle=line,
                    marker=marker,
                    markersize=3,
                    color=ATTACK_COLORS.get(attack, "gray"),
                )
            clean = (
                _clean_accuracy(evals, dataset, references[panel]) if panel in references else None
            )
            if clean is not None:
                ax.axhline(clean, color="black", linestyle=(0, (1, 3)), linewidth=1)
            if part.empty:
                ax.text(0.5, 0.5, "not evaluated", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(panel_titles[panel])
            ax.set_xlabel(r"attack strength $\epsilon$ ($\times 10^{-3}$)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("accuracy (%)")
        axes[0].set_ylim(0, 100)
        handles = [
            Line2D([], [], color=ATTACK_COLORS[a], label=a.upper())
            for a in attacks
            if a in ATTACK_COLORS
        ]
        handles += [
            Line2D([], [], color="gray", linestyle=line, marker=marker, markersize=3, label=curve)
            for curve, (line, marker) in styles.items()
        ]
        handles.append(
            Line2D(
                [],
                [],
                color="black",
                linestyle=(0, (1, 3)),
                linewidth=1,
                label="clean unimodal model of the unattacked modality",
            )
        )
        fig.legend(
            handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False
        )
        fig.suptitle(f"Adversarial robustness: {dataset_name(dataset)}")
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        return save_figure(fig, out_stem)


# --- localization under attack (Fig. 4, 9) ---------------------------------------------------


def _as_image(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    return (np.clip(frame, 0.0, 1.0) * 255).round().astype(np.uint8)


def _class_name(names: np.ndarray | None, index: int) -> str:
    if names is not None and 0 <= index < len(names):
        return str(names[index])
    return str(index)


def plot_localization(
    source: str | Path | Mapping[str, np.ndarray], out_stem: str | Path, max_samples: int = 4
) -> list[Path]:
    """Fig. 4 / 9: per clip, the input frame, the attacked frame and the attention overlays.

    ``source``: an .npz (or mapping) in the layout of
    :func:`avmodels.study.analysis_arrays.save_localization_npz`. Columns: input frame, attacked
    frame (the AV attack's, else the V attack's), then the attention map over the frame
    each mode saw, titled with the prediction and the localization score.
    """
    arr = load_arrays(source)
    frames = {m: arr[f"frames_{m}"] for m in MODES if f"frames_{m}" in arr}
    if "clean" not in frames and "frames" in arr:
        frames["clean"] = arr["frames"]
    if "clean" not in frames:
        raise ValueError("localization data lacks frames_clean")
    modes = [m for m in MODES if f"attention_{m}" in arr]
    names = arr.get("class_names")
    score_name = str(arr["score_name"]) if "score_name" in arr else "score"
    labels = arr["labels"]
    n = min(max_samples, len(frames["clean"]), len(labels))
    attacked_key = next((m for m in ("av", "v") if m in frames), "clean")
    ncols = 2 + len(modes)
    with rc_context(RC):
        fig = Figure(figsize=(1.7 * ncols, 1.9 * max(n, 1)))
        axes = np.atleast_2d(fig.subplots(max(n, 1), ncols, squeeze=False))
        for i in range(n):
            base = _as_image(frames["clean"][i])
            height, width = base.shape[:2]
            axes[i, 0].imshow(base)
            axes[i, 0].set_title(f"input: {_class_name(names, int(labels[i]))}")
            axes[i, 1].imshow(_as_image(frames[attacked_key][i]))
            axes[i, 1].set_title(f"attacked frame ({attacked_key.upper()})")
            for j, mode in enumerate(modes, start=2):
                ax = axes[i, j]
                shown = frames.get(mode if mode in ("v", "av") else "clean", frames["clean"])
                ax.imshow(_as_image(shown[i]))
                ax.imshow(
                    arr[f"attention_{mode}"][i],
                    cmap="jet",
                    alpha=0.45,
                    interpolation="bilinear",
                    extent=(0, width, height, 0),
                )
                pred = int(arr[f"pred_{mode}"][i]) if f"pred_{mode}" in arr else -1
                verdict = "correct" if pred == int(labels[i]) else "wrong"
                title = f"{MODE_TITLES[mode]}\npred: {_class_name(names, pred)} ({verdict})"
                score = arr.get(f"score_{mode}")
                if score is not None:
                    value = float(score) if score.ndim == 0 else float(score[i])
                    title += f"\n{score_name}: {value:.2f}"
                ax.set_title(title)
        for ax in axes.flat:
            ax.set_axis_off()
        summary = []
        for mode in modes:
            score = arr.get(f"score_{mode}")
            if score is not None:
                summary.append(f"{MODE_TITLES[mode]} {float(np.mean(score)):.2f}")
        if summary:
            fig.suptitle(f"mean {score_name}: " + ", ".join(summary))
        fig.tight_layout()
        return save_figure(fig, out_stem)


# --- t-SNE (Fig. 5, 10, 11) ------------------------------------------------------------------

STREAM_MARKERS = {"visual": "^", "audio": "o", "audio_attacked": "*", "visual_attacked": "*"}
STREAM_LABELS = {
    "visual": "visual",
    "audio": "audio",
    "audio_attacked": "attacked audio",
    "visual_attacked": "attacked visual",
}


def tsne_embed(parts: Sequence[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """A joint 2-D t-SNE (van der Maaten & Hinton, JMLR 2008) of several point sets.

    Fixed ``random_state``, PCA initialisation and one thread (no order-dependent parallel
    sums) make it repeatable; the perplexity is 30 or less for small sets (it must stay
    below the number of points).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    stacked = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
    perplexity = float(min(30.0, max(1.0, (len(stacked) - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=1)
    with threadpool_limits(limits=1):
        embedded = tsne.fit_transform(stacked)
    bounds = np.cumsum([len(p) for p in parts])[:-1]
    return np.split(embedded, bounds)


def plot_tsne(
    source: str | Path | Mapping[str, np.ndarray],
    out_stem: str | Path,
    models: Sequence[str] = ("concat", "minsim"),
    titles: Sequence[str] = ("w/o MinSim", "w/ MinSim"),
    attacked: str | None = None,
    seed: int = 0,
) -> list[Path]:
    """Fig. 5 (``attacked=None``), 10 (``"audio"``) or 11 (``"visual"``).

    One panel per model: a joint t-SNE of its audio and visual embeddings (plus the attacked
    ones); marker = stream, colour = class.
    """
    if attacked not in (None, "audio", "visual"):
        raise ValueError(f"attacked must be None, 'audio' or 'visual', got {attacked!r}")
    arr = load_arrays(source)
    labels = arr["labels"].astype(int)
    names = arr.get("class_names")
    streams = ["audio", "visual"] + ([f"{attacked}_attacked"] if attacked else [])
    classes = np.unique(labels)
    palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    colour = {int(c): palette(i % palette.N) for i, c in enumerate(classes)}
    width = 4.2 * len(models) + 1.6
    with rc_context(RC):
        fig = Figure(figsize=(width, 4))
        axes = fig.subplots(1, len(models), squeeze=False)[0]
        for ax, model, title in zip(axes, models, titles, strict=True):
            keys = [f"{model}__{s}" for s in streams]
            missing = [k for k in keys if k not in arr]
            ax.set_title(title)
            ax.set_xticks([])
            ax.set_yticks([])
            if missing:
                ax.text(0.5, 0.5, "not evaluated", ha="center", va="center", transform=ax.transAxes)
                log.warning("t-SNE: %s lacks %s", model, ", ".join(missing))
                continue
            embedded = tsne_embed([arr[k] for k in keys], seed)
            for stream, points in zip(streams, embedded, strict=True):
                colours = [colour[int(c)] for c in labels[: len(points)]]
                size = 36 if stream.endswith("attacked") else 14
                ax.scatter(
                    points[:, 0],
                    points[:, 1],
                    color=colours,
                    marker=STREAM_MARKERS[stream],
                    s=size,
                    linewidths=0,
                )
        handles = [
            Line2D(
                [], [], linestyle="", marker=STREAM_MARKERS[s], color="gray", label=STREAM_LABELS[s]
            )
            for s in streams
        ]
        handles += [
            Line2D(
                [],
                [],
                linestyle="",
                marker="s",
                color=colour[int(c)],
                label=_class_name(names, int(c)),
            )
            for c in classes
        ]
        fig.legend(handles=handles, loc="center right", fontsize=6, frameon=False)
        fig.tight_layout(rect=(0, 0, 1 - 1.5 / width, 1))
        return save_figure(fig, out_stem)
