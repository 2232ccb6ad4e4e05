"""Our PGD and MIM against torchattacks' PGD and MIFGSM on the unimodal visual model.

Same settings on both sides: L-inf eps, step eps/8, 10 steps, no random start, decay 1.0,
images in [0, 1] (the model normalises inside). torchattacks' MIFGSM divides the gradient by its
per-sample mean absolute value where MIM (Dong et al. 2018) divides by the L1 norm; the two
differ by the constant number of elements per sample, which the sign step cancels, so the
adversarial images should agree up to floating-point rounding (torchattacks re-adds the clipped
perturbation to the clean image every step, which can move a pixel by one ulp). The script reports
the largest difference and how many pixels differ by more than 1e-6, beside the same figures
for our attack run twice (on CUDA, non-deterministic backward kernels can flip the sign of
near-zero gradients, so there a re-run may differ as much). Timing: interleaved repetitions,
ratio of median times, ours / theirs; target <= 1.0. Our attacks take the model's parameters
out of autograd while they run; torchattacks leaves them in.

    python bench/vs_torchattacks.py [--size 64] [--batch 16] [--eps 0.012] [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
from functools import partial

import torch
import torchattacks
from _timing import interleaved
from torch import Tensor, nn

from avmodels.models.model import AVModel, ModelConfig
from avmodels.robustness.attacks import MIM, PGD

TARGET = 1.0
STEPS = 10


class Positional(nn.Module):
    """``model(visual=x)`` as ``model(x)``, the calling convention torchattacks expects."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(visual=x)


def run(
    quick: bool = False,
    size: int = 64,
    batch: int = 16,
    eps: float = 0.012,
    reps: int = 5,
    device: str = "cpu",
) -> list[dict]:
    """Rows {benchmark, figure, value, target, met} per attack, with max_abs_diff and timings."""
    if quick:
        size, batch, reps = 32, 4, 3
    torch.manual_seed(0)
    model = AVModel(ModelConfig(variant="visual")).to(device).eval()
    images = torch.rand(batch, 3, size, size, device=device)
    labels = torch.randint(0, model.config.num_classes, (batch,), device=device)
    wrapped = Positional(model).eval()
    pairs = {
        "PGD": (
            PGD(model, {"visual": eps}, steps=STEPS),
            torchattacks.PGD(wrapped, eps=eps, alpha=eps / 8, steps=STEPS, random_start=False),
        ),
        "MIM": (
            MIM(model, {"visual": eps}, steps=STEPS, decay=1.0),
            torchattacks.MIFGSM(wrapped, eps=eps, alpha=eps / 8, steps=STEPS, decay=1.0),
        ),
    }
    rows = []
    for name, (ours, theirs) in pairs.items():
        fns = {
            "ours": partial(ours, {"visual": images}, labels),
            "theirs": partial(theirs, images, labels),
        }
        first, again = fns["ours"]()["visual"], fns["ours"]()["visual"]
        diff, floor = (first - fns["theirs"]()).abs(), (first - again).abs()
        times = interleaved(fns, reps, device)
        ratio = statistics.median(times["ours"]) / statistics.median(times["theirs"])
        rows.append(
            {
                "benchmark": "vs_torchattacks",
                "figure": f"our {name}-{STEPS} time / torchattacks "
                f"{'MIFGSM' if name == 'MIM' else name} ({size} px, batch {batch}, {device})",
                "value": round(ratio, 3),
                "target": f"<= {TARGET}",
                "met": ratio <= TARGET,
                "ours_ms": round(1e3 * statistics.median(times["ours"]), 1),
                "theirs_ms": round(1e3 * statistics.median(times["theirs"]), 1),
                "max_abs_diff": float(diff.max()),
                "pixels_over_1e-6": int((diff > 1e-6).sum()),
                "repeat_max_abs_diff": float(floor.max()),
                "repeat_pixels_over_1e-6": int((floor > 1e-6).sum()),
                "pixels": diff.numel(),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image side (px)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--eps", type=float, default=0.012, help="L-inf budget in [0, 1] units")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 3 repetitions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run(args.quick, args.size, args.batch, args.eps, args.reps, args.device)
    print(f"threads={args.threads} eps={args.eps}")
    for r in rows:
        print(
            f"{r['figure']:<70} {r['ours_ms']:>8.1f} ms vs {r['theirs_ms']:>8.1f} ms  "
            f"ratio {r['value']:.3f} (target {r['target']}) {'PASS' if r['met'] else 'MISS'}  "
            f"max |ours - theirs| {r['max_abs_diff']:.2e}, "
            f"{r['pixels_over_1e-6']}/{r['pixels']} values differ by > 1e-6; "
            f"ours run twice: {r['repeat_max_abs_diff']:.2e}, {r['repeat_pixels_over_1e-6']}"
        )


if __name__ == "__main__":
    main()
