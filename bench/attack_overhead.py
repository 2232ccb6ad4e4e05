"""Attack overhead: PGD-10 and MIM-10 time over 10 x (forward + backward) on the same batch.

The reference is one gradient step done plainly: model forward + cross-entropy +
``torch.autograd.grad`` w.r.t. the attacked inputs, parameters left requiring grad. The attacks
take their parameters out of autograd for the attack (restored after), which makes each step
cheaper on a GPU; the ratio over the same reference with frozen parameters (informative rows)
isolates what the attack itself adds (set-up, sign, momentum, projection). Measured on the
audio-visual Concat model (audio-visual attack) and on the unimodal visual model, with the
repetitions interleaved and each ratio one of median times.
Target: ratio <= 1.05.

    python bench/attack_overhead.py [--size 64] [--samples 16384] [--batch 16] [--reps 9]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from _timing import interleaved

from avmodels.models.model import AVModel, ModelConfig
from avmodels.robustness.attacks import MIM, PGD, eval_mode

TARGET = 1.05
STEPS = 10


def make_case(variant: str, size: int, samples: int, batch: int, device: str, seed: int = 0):
    """An eval-mode model, raw inputs inside their bounds and labels."""
    torch.manual_seed(seed)
    model = AVModel(ModelConfig(variant=variant)).to(device).eval()
    inputs = {
        "audio": torch.rand(batch, samples, device=device) * 2 - 1,
        "visual": torch.rand(batch, 3, size, size, device=device),
    }
    inputs = {m: inputs[m] for m in model.modalities}
    labels = torch.randint(0, model.config.num_classes, (batch,), device=device)
    return model, inputs, labels


def gradient_steps(model, inputs, labels, n: int, freeze: bool = False) -> Callable[[], None]:
    """n x (forward + backward w.r.t. the inputs only); ``freeze``: parameters out of autograd."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}

    def run() -> None:
        with eval_mode(model, freeze=freeze):
            for _ in range(n):
                loss = F.cross_entropy(model(**leaves), labels)
                torch.autograd.grad(loss, list(leaves.values()))

    return run


def median_ratio(num: list[float], den: list[float]) -> float:
    return statistics.median(num) / statistics.median(den)


def run(
    quick: bool = False,
    size: int = 64,
    samples: int = 16384,
    batch: int = 16,
    reps: int = 9,
    device: str = "cpu",
) -> list[dict]:
    """Rows {benchmark, figure, value, target, met} (plus the medians in ms) per model/attack."""
    if quick:
        size, samples, batch, reps = 32, 4096, 4, 3
    setting = f"{size} px, {samples} samples, batch {batch}, {device}"
    rows = []
    for variant, eps in (("concat", 0.006), ("visual", 0.012)):
        model, inputs, labels = make_case(variant, size, samples, batch, device)
        budget = {k: eps for k in inputs}
        fns = {
            "fb": gradient_steps(model, inputs, labels, STEPS),
            "fb_frozen": gradient_steps(model, inputs, labels, STEPS, freeze=True),
            "pgd": partial(PGD(model, budget, steps=STEPS), inputs, labels),
            "mim": partial(MIM(model, budget, steps=STEPS), inputs, labels),
        }
        times = interleaved(fns, reps, device)
        for attack in ("pgd", "mim"):
            for base, target in (("fb", TARGET), ("fb_frozen", None)):
                ratio = median_ratio(times[attack], times[base])
                label = "" if target else " with parameters frozen too"
                rows.append(
                    {
                        "benchmark": "attack_overhead",
                        "figure": f"{attack.upper()}-{STEPS} / {STEPS} x (fwd+bwd{label}), "
                        f"{variant} model ({setting})",
                        "value": round(ratio, 3),
                        "target": None if target is None else f"<= {target}",
                        "met": None if target is None else ratio <= target,
                        "attack_ms": round(1e3 * statistics.median(times[attack]), 1),
                        "fwd_bwd_ms": round(1e3 * statistics.median(times[base]), 1),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image side (px)")
    parser.add_argument("--samples", type=int, default=16384, help="audio samples")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 3 repetitions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run(args.quick, args.size, args.samples, args.batch, args.reps, args.device)
    print(f"threads={args.threads}")
    for r in rows:
        verdict = "info" if r["met"] is None else ("PASS" if r["met"] else "MISS")
        print(
            f"{r['figure']:<100} {r['attack_ms']:>9.1f} ms vs {r['fwd_bwd_ms']:>9.1f} ms  "
            f"ratio {r['value']:.3f} (target {r['target']})  {verdict}"
        )


if __name__ == "__main__":
    main()
