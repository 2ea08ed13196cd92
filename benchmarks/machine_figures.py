"""What the benchmarks print about the machine and themselves: peak FLOP rates, package versions, plain tables."""

from __future__ import annotations

import time

import torch


def flops_per_token(encoder) -> float:
    """2 x the backbone's non-embedding parameters (the pooler, unused for embeddings, excluded)."""
    backbone = encoder.backbone
    skipped = {id(p) for name in ("embeddings", "pooler") if getattr(backbone, name, None) is not None for p in getattr(backbone, name).parameters()}
    return 2.0 * sum(p.numel() for p in backbone.parameters() if id(p) not in skipped)


def measured_clock_ghz(per_cycle: int) -> float:
    """Clock a core must at least run at, from a 1-thread fp32 GEMM: GFLOP/s / FLOPs per cycle."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a = torch.randn(1024, 1024)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    torch.set_num_threads(threads)
    return 2 * 1024**3 / best / 1e9 / per_cycle


def peak_description(info, clock: float, nominal: float, measured: float) -> list[str]:
    lines = [f"CPU: {info.model}; {info.cores} usable cores; flags: " + ", ".join(f for f in ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16") if f in info.flags)]
    lines.append(
        f"clock: {clock:.2f} GHz (OS reports {nominal:.2f} GHz; a 1-thread fp32 GEMM implies >= {measured:.2f} GHz; the larger is used)"
    )
    for precision, per_cycle in (("fp32", info.fp32_flops_per_cycle()), ("bf16", info.bf16_flops_per_cycle()), ("int8", info.int8_ops_per_cycle())):
        peak = info.peak_flops(precision, clock)
        lines.append(f"peak {precision}: {info.cores} cores x {clock:.2f} GHz x {per_cycle} FLOPs/cycle = {peak / 1e9:.0f} GFLOP/s")
    return lines


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def version(package: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(package)
