"""Which precision a run trains in: `auto` is bf16 autocast where the hardware runs bf16 natively.

Autocast keeps fp32 master weights and optimizer state and runs the matrix products in
bf16, which is 1.4-1.6x faster on a CPU with AVX-512 BF16 or AMX (and on any GPU with
bf16) and, with fp32 weights, trains to the same accuracy. Elsewhere bf16 is emulated
and slower than fp32, so `auto` falls back to fp32 there.

On a GPU, bf16 is not faster everywhere: a small encoder's step can be launch-bound, and an
attention kernel that plans per shape made bf16 slower than fp32 on Hopper. So on CUDA
`auto` times a forward and backward at the run's batch shape in both (`precision_probe`)
and takes bf16 only when it measured faster; the timings go into the run's start event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

PRECISIONS = ("auto", "no", "bf16", "fp16")


@dataclass(frozen=True)
class PrecisionChoice:
    """What a run trains in and why."""

    requested: str
    """The config's value: auto, no, bf16 or fp16."""
    used: str
    """What Accelerate is given: no, bf16 or fp16."""
    reason: str
    """One line for the console and the run's start event."""
    probe: dict | None = None
    """On a GPU under auto: the timed forward+backward in fp32 and bf16 that decided (milliseconds, batch shape)."""

    def to_dict(self) -> dict:
        data = {"requested": self.requested, "used": self.used, "reason": self.reason}
        if self.probe is not None:
            data["probe"] = dict(self.probe)
        return data


def resolve_precision(requested: str, device_type: str | None = None, probe: Callable[[], dict] | None = None) -> PrecisionChoice:
    """Turn `auto` into bf16 or no for this device; explicit choices pass through.

    `probe` (used on CUDA only): returns {"fp32_ms", "bf16_ms", ...} for this run's model and batch shape.
    """
    import torch  # here, not at the top: the config reads PRECISIONS before torch is needed

    from ..inference.backends import bf16_available

    if requested not in PRECISIONS:
        raise ValueError(f"unknown mixed_precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    device_type = device_type or ("cuda" if torch.cuda.is_available() else "cpu")
    if requested != "auto":
        return PrecisionChoice(requested, requested, "as configured")
    if device_type == "cuda" and probe is not None and bf16_available(device_type):
        try:
            timings = probe()
        except Exception as error:  # noqa: BLE001 - a probe that cannot run leaves the rule below to decide
            timings = {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]}
    else:
        timings = None
    if timings is not None and "error" not in timings:
        faster = timings["bf16_ms"] < timings["fp32_ms"]
        measured = f"a forward+backward took {timings['bf16_ms']:.2f} ms in bf16, {timings['fp32_ms']:.2f} ms in fp32"
        if faster:
            return PrecisionChoice(requested, "bf16", f"bf16 autocast with fp32 weights ({measured} on this GPU)", timings)
        return PrecisionChoice(requested, "no", f"fp32 ({measured} on this GPU: bf16 does not pay here)", timings)
    if bf16_available(device_type):
        where = "this GPU supports bf16" if device_type == "cuda" else "this CPU has AVX-512 BF16 or AMX"
        return PrecisionChoice(requested, "bf16", f"bf16 autocast with fp32 weights ({where})", timings)
    return PrecisionChoice(requested, "no", f"fp32 (no native bf16 on this {device_type.upper()})", timings)


def forget_previous_precision() -> None:
    """Let this run choose its own precision although an earlier run in the process chose another.

    Accelerate keeps the mixed-precision setting in a process-wide singleton and refuses a
    second Accelerator with a different one ("AcceleratorState has already been
    initialized"); a notebook, a study or a test suite trains several configs in one
    process. Only that part is reset: the process group (PartialState) stays as it is.
    """
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)
