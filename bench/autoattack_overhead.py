"""APGD and Square overhead: APGD-100 time over 100 x (fwd+bwd), Square time per query over one
forward, on the same batch.

APGD-100 does 100 forward + backward passes and one forward; the reference is 100 plain gradient
steps (forward, cross-entropy, ``torch.autograd.grad`` w.r.t. the inputs, parameters left
requiring grad; the informative rows freeze them too, as the attack does). Square does one
forward per query on the examples not yet fooled; the labels are the model's own predictions and
the budget is small, so every example stays in the search (the rows report how many were fooled
anyway) and the reference is ``queries + 1`` forwards of the whole batch without gradients.
Measured on the audio-visual Concat model (both inputs attacked) and on the visual model.
Targets: APGD ratio <= 1.05, Square ratio <= 1.1.

    python bench/autoattack_overhead.py [--size 64] [--samples 16384] [--batch 8] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
from _timing import interleaved
from attack_overhead import gradient_steps, make_case

from avmodels.robustness.apgd import APGD
from avmodels.robustness.attacks import eval_mode
from avmodels.robustness.square import Square

APGD_TARGET, SQUARE_TARGET = 1.05, 1.1
APGD_STEPS, SQUARE_QUERIES = 100, 100


def forwards(model, inputs, n: int) -> Callable[[], None]:
    """n forwards of the whole batch, no gradients, eval mode."""

    def run() -> None:
        with torch.no_grad(), eval_mode(model):
            for _ in range(n):
                model(**inputs)

    return run


def run(
    quick: bool = False,
    size: int = 64,
    samples: int = 16384,
    batch: int = 8,
    reps: int = 3,
    device: str = "cpu",
) -> list[dict]:
    """Rows {benchmark, figure, value, target, met} (plus medians in ms) per model and attack."""
    apgd_steps, queries = (10, 10) if quick else (APGD_STEPS, SQUARE_QUERIES)
    if quick:
        size, samples, batch, reps = 32, 4096, 4, 3
    setting = f"{size} px, {samples} samples, batch {batch}, {device}"
    rows = []
    for variant, eps in (("concat", 0.006), ("visual", 0.012)):
        model, inputs, _ = make_case(variant, size, samples, batch, device)
        with torch.no_grad(), eval_mode(model):
            labels = model(**inputs).argmax(1)  # every example starts correctly classified
        apgd = APGD(model, {k: eps for k in inputs}, steps=apgd_steps)
        square = Square(model, {k: 1e-4 for k in inputs}, steps=queries)
        fns = {
            "fb": gradient_steps(model, inputs, labels, apgd_steps),
            "fb_frozen": gradient_steps(model, inputs, labels, apgd_steps, freeze=True),
            "apgd": lambda a=apgd, i=inputs, y=labels: a(i, y),
            "fwd": forwards(model, inputs, queries + 1),
            "square": lambda a=square, i=inputs, y=labels: a(i, y),
        }
        times = interleaved(fns, reps, device)
        with torch.no_grad(), eval_mode(model):
            fooled = int((model(**square(inputs, labels)).argmax(1) != labels).sum())
        med = {name: statistics.median(t) for name, t in times.items()}
        for base, target in (("fb", APGD_TARGET), ("fb_frozen", None)):
            label = "" if target else " with parameters frozen too"
            rows.append(
                row(
                    f"APGD-{apgd_steps} / {apgd_steps} x (fwd+bwd{label}), "
                    f"{variant} model ({setting})",
                    med["apgd"] / med[base],
                    target,
                    attack_ms=round(1e3 * med["apgd"], 1),
                    reference_ms=round(1e3 * med[base], 1),
                )
            )
        rows.append(
            row(
                f"Square time per query / one forward ({queries} queries), "
                f"{variant} model ({setting})",
                med["square"] / med["fwd"],
                SQUARE_TARGET,
                attack_ms=round(1e3 * med["square"], 1),
                reference_ms=round(1e3 * med["fwd"], 1),
                fooled_examples=fooled,
            )
        )
    return rows


def row(figure: str, ratio: float, target: float | None, **extra) -> dict:
    return {
        "benchmark": "autoattack_overhead",
        "figure": figure,
        "value": round(ratio, 3),
        "target": None if target is None else f"<= {target}",
        "met": None if target is None else ratio <= target,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image side (px)")
    parser.add_argument("--samples", type=int, default=16384, help="audio samples")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 10 steps and queries")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run(args.quick, args.size, args.samples, args.batch, args.reps, args.device)
    print(f"threads={args.threads}")
    for r in rows:
        verdict = "info" if r["met"] is None else ("PASS" if r["met"] else "MISS")
        print(
            f"{r['figure']:<110} {r['attack_ms']:>9.1f} ms vs {r['reference_ms']:>9.1f} ms  "
            f"ratio {r['value']:.3f} (target {r['target']})  {verdict}"
            + (f"  fooled {r['fooled_examples']}" if "fooled_examples" in r else "")
        )


if __name__ == "__main__":
    main()
