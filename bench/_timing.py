"""The timing loop the benchmarks share: interleaved repetitions of the variants compared."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def interleaved(
    fns: dict[str, Callable[[], object]], reps: int, device: str = "cpu"
) -> dict[str, list[float]]:
    """Seconds per call of each function, repetitions interleaved (order rotated each time),
    after one warm-up call each.

    On CPU the clock is this process's CPU time, which other jobs on a shared machine do not
    inflate (run with one thread); on CUDA it is wall-clock time between synchronisations.
    """
    cuda = device.startswith("cuda")
    clock = time.perf_counter if cuda else time.process_time
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    names, times = list(fns), {name: [] for name in fns}
    for name in names:
        fns[name]()
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            sync()
            start = clock()
            fns[name]()
            sync()
            times[name].append(clock() - start)
    return times
