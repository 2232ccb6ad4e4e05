"""Which device a job runs on, and why a GPU it asks for is not usable.

A job asks for a GPU through its resources (``gpu``/``gpus`` > 0, as the SLURM profile sets
for the network rules) or through the config key ``device: cuda``; such a job stops before
any work, in one line, when torch cannot use a GPU. The chosen device reaches the library
through ``AVMODELS_DEVICE``, read by :func:`avmodels.study.running.resolve_device`.
"""

from __future__ import annotations

import glob
import os

import torch

REQUESTS = ("auto", "cpu", "cuda")
ENV = "AVMODELS_DEVICE"


class DeviceUnavailable(RuntimeError):
    """A GPU was asked for and none is usable; the message says why."""


def cuda_problem() -> str | None:
    """Why torch cannot use a GPU here, or ``None`` when it can."""
    build = f"torch {torch.__version__}"
    if torch.version.cuda is None:
        return f"{build} is a CPU-only build (install a CUDA wheel of torch, see the README)"
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"no GPU visible: CUDA_VISIBLE_DEVICES={visible!r}"
    if glob.glob("/dev/nvidia[0-9]*"):
        return (
            f"a GPU device node exists but {build} (built for CUDA {torch.version.cuda}) cannot "
            "use it: the NVIDIA driver is likely too old for this CUDA build (compare "
            "`nvidia-smi`'s CUDA version; see the README for the wheel that fits the driver)"
        )
    return f"no GPU device on {os.uname().nodename} (no /dev/nvidia* node)"


def choose(request: str = "auto", gpu_asked: bool = False) -> torch.device:
    """The device for ``request`` (``auto``, ``cpu``, ``cuda``); a GPU is required when
    ``request`` is ``cuda`` or ``gpu_asked`` (the job's resources ask for one) and the request
    is not ``cpu``. Raises :class:`DeviceUnavailable` when a required GPU is not usable."""
    if request not in REQUESTS:
        raise ValueError(f"device must be one of {', '.join(REQUESTS)}, not {request!r}")
    if request == "cpu":
        return torch.device("cpu")
    problem = cuda_problem()
    if problem is None:
        return torch.device("cuda")
    if request == "cuda" or gpu_asked:
        raise DeviceUnavailable(f"a GPU is required but not usable: {problem}")
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    """The device in words for logs: GPU name, torch CUDA version and CPU threads."""
    if device.type == "cuda":
        index = device.index or 0
        name = torch.cuda.get_device_name(index)
        return f"cuda:{index} ({name}, torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"cpu ({torch.get_num_threads()} threads, torch {torch.__version__})"
