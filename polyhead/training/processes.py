"""Where a run trains: the configured device, checked, and the processes that train, said out loud.

`accelerate launch --num_processes 2` without a multi-process launcher quietly starts one
process; printing the count and devices at the start makes that visible in the first lines.
"""

from __future__ import annotations

import os

import torch

from ..devices import check_precision_on, resolve_device
from ..errors import InputError


def training_device(name: str | None, precision: str) -> torch.device:
    """training.device on this machine (InputError when unavailable or when it clashes with fp16 or the launcher)."""
    device = resolve_device(name, "training.device")
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1 and device.index is not None:
        raise InputError(f"{name!r} names one GPU, but {world} processes train and each takes its own; use cuda",
                         field="training.device")
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device.index)  # Accelerate's single process trains on the current CUDA device
    check_precision_on(precision, device.type)
    return device


def describe_processes(devices: list[str], backend: str | None) -> str:
    """`training on 2 processes: cpu, cpu (gloo)` — one line for the run start."""
    count = len(devices)
    over = f" ({backend})" if count > 1 and backend else ""
    return f"training on {count} process{'es' if count > 1 else ''}: {', '.join(devices)}{over}"


def announce_processes(accelerator) -> list[str]:
    """Every process's device, gathered to all; the main process prints the line."""
    from accelerate.utils import gather_object

    device = accelerator.device
    own = "cpu" if device.type == "cpu" else str(device)  # Accelerate numbers CPU processes cpu:0 all alike
    devices = [str(d) for d in gather_object([own])] if accelerator.num_processes > 1 else [own]
    if accelerator.is_main_process:
        print(describe_processes(devices, getattr(accelerator.state, "backend", None)), flush=True)
    return devices
