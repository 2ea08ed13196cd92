"""What the CPU can do: instruction-set flags, usable cores, and its theoretical peak FLOP rate.

The automatic backend choice needs to know whether the CPU multiplies bf16 natively
(AVX-512 BF16 or AMX); the benchmark needs a peak rate to say how close a path gets to
the hardware limit. Peak = cores x clock x FLOPs per cycle per core, where FLOPs per
cycle follow from the vector width and number of FMA pipes of the core family.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuInfo:
    """The facts about this machine's CPU that speed decisions depend on."""

    model: str
    """Model name as /proc/cpuinfo reports it."""
    vendor: str
    """`GenuineIntel`, `AuthenticAMD`, or '' when unknown."""
    family: int
    """CPU family number (AMD: 25 = Zen 3/4, 26 = Zen 5); 0 when unknown."""
    cores: int
    """Cores this process may run on (its CPU affinity), not the host's total."""
    clock_ghz: float
    """Highest clock the OS reports (cpufreq maximum, else /proc/cpuinfo 'cpu MHz'); 0 if unknown."""
    flags: frozenset[str]
    """Instruction-set flags from /proc/cpuinfo."""

    @property
    def has_avx512_bf16(self) -> bool:
        return "avx512_bf16" in self.flags

    @property
    def has_amx_bf16(self) -> bool:
        return "amx_bf16" in self.flags

    @property
    def native_bf16(self) -> bool:
        """True when bf16 matrix products run on dedicated instructions (so bf16 is faster than fp32)."""
        return self.has_avx512_bf16 or self.has_amx_bf16

    def fp32_flops_per_cycle(self) -> int:
        """fp32 FLOPs one core can retire per cycle: FMA pipes x vector lanes x 2."""
        if "avx512f" in self.flags:
            # Zen 4 runs 512-bit instructions on two 256-bit FMA pipes; Intel server cores
            # and Zen 5 have two full 512-bit pipes.
            if self.vendor == "AuthenticAMD" and self.family < 26:
                return 2 * 8 * 2
            return 2 * 16 * 2
        if "avx2" in self.flags and "fma" in self.flags:
            return 2 * 8 * 2
        if "avx" in self.flags:
            return 2 * 8
        return 2 * 4

    def bf16_flops_per_cycle(self) -> int:
        """bf16 FLOPs per cycle per core: AMX tiles, else AVX-512 BF16 dot products (twice fp32)."""
        if self.has_amx_bf16:
            return 1024 * 2
        if self.has_avx512_bf16:
            return 2 * self.fp32_flops_per_cycle()
        return self.fp32_flops_per_cycle()

    def int8_ops_per_cycle(self) -> int:
        """int8 multiply-add ops per cycle per core: AMX, else VNNI (four times fp32)."""
        if "amx_int8" in self.flags:
            return 2048 * 2
        if "avx512_vnni" in self.flags or "avx_vnni" in self.flags:
            return 4 * self.fp32_flops_per_cycle()
        return 2 * self.fp32_flops_per_cycle()

    def peak_flops(self, precision: str = "fp32", clock_ghz: float | None = None) -> float:
        """Theoretical peak in FLOP/s: cores x clock x FLOPs per cycle for `precision`."""
        per_cycle = {
            "fp32": self.fp32_flops_per_cycle,
            "bf16": self.bf16_flops_per_cycle,
            "int8": self.int8_ops_per_cycle,
        }
        if precision not in per_cycle:
            raise ValueError(f"precision must be one of {', '.join(per_cycle)}, got {precision!r}")
        clock = clock_ghz if clock_ghz is not None else self.clock_ghz
        return self.cores * clock * 1e9 * per_cycle[precision]()


def usable_cores() -> int:
    """Cores this process may use (affinity-aware, so containers and taskset are respected)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _first_field(cpuinfo: str, key: str) -> str:
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return ""


def _clock_ghz(cpuinfo: str) -> float:
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    if max_khz.isdigit():
        return int(max_khz) / 1e6
    mhz = _first_field(cpuinfo, "cpu MHz")
    try:
        return float(mhz) / 1e3
    except ValueError:
        return 0.0


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU, read once from /proc/cpuinfo and sysfs (empty facts elsewhere)."""
    text = _read("/proc/cpuinfo")
    family = _first_field(text, "cpu family")
    return CpuInfo(
        model=_first_field(text, "model name") or platform.processor() or "unknown",
        vendor=_first_field(text, "vendor_id"),
        family=int(family) if family.isdigit() else 0,
        cores=usable_cores(),
        clock_ghz=_clock_ghz(text),
        flags=frozenset(_first_field(text, "flags").split()),
    )


def cpu_has_native_bf16() -> bool:
    """True when the CPU has AVX-512 BF16 or AMX, per /proc/cpuinfo or torch's own check."""
    if cpu_info().native_bf16:
        return True
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except (ImportError, AttributeError):
        return False
    return "AMX" in capability.upper()
