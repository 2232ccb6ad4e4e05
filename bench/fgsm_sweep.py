"""FGSM over 8 budgets x 3 modes (A, V, AV) from shared gradients vs the naive loop.

The FGSM gradient at the clean point w.r.t. one modality does not depend on which modalities
are attacked, so ONE forward + backward gives all 24 adversarial sets (``FGSM.sweep``); the
naive loop takes one gradient per budget and mode. Both then score every set (no-grad forwards).
``predict_sets(share_features=True)`` further encodes each distinct input once (the clean audio
of the V sets, the adversarial audio shared by the A and AV sets at one budget, ...), so the 24
scoring forwards cost 9 encoder passes per modality plus 24 classifier heads.

Figures (audio-visual Concat model, interleaved repetitions, ratios of median times):
naive / shared speed-up (target >= 5) and shared / (3 forward+backward + 24 forward)
(target <= 1.3). The same two figures without feature sharing are reported for information.

    python bench/fgsm_sweep.py [--size 64] [--samples 16384] [--batch 16] [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from _timing import interleaved
from torch import Tensor

from avmodels.models.model import AVModel, ModelConfig
from avmodels.robustness.attacks import FGSM, predict_sets

BUDGETS = tuple(0.002 * i for i in range(1, 9))  # 8 budgets, 0.002 ... 0.016
MODES = {"A": ("audio",), "V": ("visual",), "AV": ("audio", "visual")}
SPEEDUP_TARGET = 5.0
REFERENCE_TARGET = 1.3


def sweep_budgets() -> list[dict[str, float]]:
    """The 24 budget dicts: each mode at each budget; the other modality stays clean."""
    return [{k: e for k in keys} for keys in MODES.values() for e in BUDGETS]


def naive(model, inputs, labels, budgets) -> list[Tensor]:
    """One FGSM gradient per budget and mode, then one scoring forward each."""
    logits = []
    for budget in budgets:
        adv = FGSM(model, budget)(inputs, labels)
        with torch.no_grad():
            logits.append(model(**adv))
    return logits


def shared(model, inputs, labels, budgets, share_features: bool = True) -> list[Tensor]:
    """One gradient for all sets; scoring shares features of identical inputs if asked."""
    sets = FGSM(model, {}).sweep(inputs, labels, budgets)
    return predict_sets(model, sets, share_features=share_features)


def reference(model, inputs, labels, grads: int = 3, forwards: int = 24) -> None:
    """``grads`` x (forward + backward w.r.t. the inputs) + ``forwards`` no-grad forwards."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    for _ in range(grads):
        loss = F.cross_entropy(model(**leaves), labels)
        torch.autograd.grad(loss, list(leaves.values()))
    with torch.no_grad():
        for _ in range(forwards):
            model(**inputs)


def _row(figure: str, value: float, target: float | None, higher: bool, **extra) -> dict:
    met = None if target is None else (value >= target if higher else value <= target)
    shown = None if target is None else f"{'>=' if higher else '<='} {target}"
    row = {"benchmark": "fgsm_sweep", "figure": figure, "value": round(value, 3)}
    return row | {"target": shown, "met": met, **extra}


def run(
    quick: bool = False,
    size: int = 64,
    samples: int = 16384,
    batch: int = 16,
    reps: int = 5,
    device: str = "cpu",
) -> list[dict]:
    """Rows {benchmark, figure, value, target, met}; target None marks an informative row."""
    if quick:
        size, samples, batch, reps = 32, 4096, 4, 3
    torch.manual_seed(0)
    model = AVModel(ModelConfig(variant="concat")).to(device).eval()
    x = {
        "audio": torch.rand(batch, samples, device=device) * 2 - 1,
        "visual": torch.rand(batch, 3, size, size, device=device),
    }
    y = torch.randint(0, model.config.num_classes, (batch,), device=device)
    budgets = sweep_budgets()
    naive_logits, shared_logits = naive(model, x, y, budgets), shared(model, x, y, budgets)
    pairs = list(zip(naive_logits, shared_logits, strict=True))
    check = {  # shared and naive give the same adversarial sets (CPU: bit for bit)
        "max_logit_diff": max(float((a - b).abs().max()) for a, b in pairs),
        "same_predictions": all(torch.equal(a.argmax(1), b.argmax(1)) for a, b in pairs),
    }
    times = interleaved(
        {
            "naive": lambda: naive(model, x, y, budgets),
            "shared": lambda: shared(model, x, y, budgets),
            "shared_plain": lambda: shared(model, x, y, budgets, share_features=False),
            "reference": lambda: reference(model, x, y),
        },
        reps,
        device,
    )

    def ratio(num: str, den: str) -> float:
        return statistics.median(times[num]) / statistics.median(times[den])

    ms = {name: round(1e3 * statistics.median(t), 1) for name, t in times.items()}
    setting = f"{size} px, {samples} samples, batch {batch}, {device}"
    plain = ", shared gradient only, 24 full scoring forwards"
    figures = [  # (figure, numerator, denominator, target, higher is better)
        ("naive loop / shared sweep, 8 budgets x A,V,AV", "naive", "shared", SPEEDUP_TARGET, True),
        ("shared sweep / (3 fwd+bwd + 24 fwd)", "shared", "reference", REFERENCE_TARGET, False),
        ("naive loop / shared sweep" + plain, "naive", "shared_plain", None, True),
        ("shared sweep / (3 fwd+bwd + 24 fwd)" + plain, "shared_plain", "reference", None, False),
    ]
    return [
        _row(f"{figure} ({setting})", ratio(num, den), target, higher, ms=ms, **check)
        for figure, num, den, target, higher in figures
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image side (px)")
    parser.add_argument("--samples", type=int, default=16384, help="audio samples")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 3 repetitions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run(args.quick, args.size, args.samples, args.batch, args.reps, args.device)
    print(f"threads={args.threads}; median ms per call: {rows[0]['ms']}")
    print(
        f"naive vs shared: max logit difference {rows[0]['max_logit_diff']:.2e}, "
        f"same predictions: {rows[0]['same_predictions']}"
    )
    for r in rows:
        verdict = "info" if r["met"] is None else ("PASS" if r["met"] else "MISS")
        target = "" if r["target"] is None else f" (target {r['target']})"
        print(f"{r['figure']:<100} {r['value']:>7.3f}{target}  {verdict}")


if __name__ == "__main__":
    main()
