"""Device names (`cpu`, `cuda`, `cuda:1`) checked once, for the CLI and the training config alike.

The name is checked as text first (no torch import), so a typo fails while arguments are
parsed; whether the device exists is asked of torch only when the command runs, and an
unavailable one is one line, not a CUDA traceback halfway through loading a model.
"""

from __future__ import annotations

import re

from .errors import InputError

DEVICE_NAME = re.compile(r"^(cpu|cuda(:\d+)?)$")
"""What a device may be called: cpu, cuda, or cuda:N."""

DEVICE_HELP = "cpu, cuda or cuda:N (default: cuda when a GPU is available, else cpu)"


def check_device_name(name: str | None, where: str = "--device") -> str | None:
    """`name` normalised (lower case, no spaces), or an InputError naming `where`; None stays None."""
    if name is None:
        return None
    text = str(name).strip().lower()
    if not DEVICE_NAME.match(text):
        raise InputError(f"unknown device {name!r}; use {DEVICE_HELP}", field=where)
    return text


def resolve_device(name: str | None, where: str = "--device"):
    """The torch.device `name` means on this machine; an unavailable CUDA device is an InputError."""
    import torch

    text = check_device_name(name, where)
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(text)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"device {text!r} is not available: this machine has no usable CUDA GPU "
                             f"(torch {torch.__version__}{', CPU build' if torch.version.cuda is None else ''}); use cpu",
                             field=where)
        if device.index is not None and device.index >= count:
            raise InputError(f"device {text!r} is not available: this machine has {count} CUDA device(s), "
                             f"cuda:0 to cuda:{count - 1}", field=where)
    return device


def check_precision_on(precision: str, device_type: str, where: str = "training.mixed_precision") -> None:
    """fp16 autocast is a GPU feature: asking for it on a CPU is a mistake, not something to pass through."""
    if precision == "fp16" and device_type != "cuda":
        raise InputError(f"fp16 needs a CUDA GPU, and this run trains on {device_type}; use auto, bf16 or no",
                         field=where)
