"""A short timed forward+backward of the run's backbone in fp32 and in bf16 autocast, on a GPU.

`mixed_precision: auto` on CUDA takes bf16 only where this measured it faster. Both sides
run the same random token batch at the run's batch size and a typical padded width, on the
same attention backends as training, warmed up first, alternated, and timed with a device
synchronisation before each clock read; the median of a few repetitions decides. Results
are kept per (GPU, model, shape) for the process, so a study or test suite probes once.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch

from ..sdpa import attention_backends
from ..tokenization import padded_width

PROBE_WIDTH = 64
"""Tokens per text in the probe batch (before the run's length bucket and max_seq_length)."""

_CACHE: dict[tuple, dict] = {}


def _time_once(backbone: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, bf16: bool) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16), attention_backends():
        out = backbone(input_ids=ids, attention_mask=mask)[0]
    out.float().pow(2).mean().backward()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def probe_precision(source: str | None, batch_size: int, max_seq_length: int | None, multiple: int = 16,
                    rounds: int = 5, warmup: int = 3) -> dict:
    """{"fp32_ms", "bf16_ms", "batch", "width", "device"}: median time of one training forward+backward each way."""
    from ..encoder import SentenceEncoder

    width = padded_width(min(PROBE_WIDTH, max_seq_length or PROBE_WIDTH), multiple, max_seq_length)
    device_name = torch.cuda.get_device_name()
    key = (device_name, str(source), batch_size, width)
    if key in _CACHE:
        return _CACHE[key]
    backbone = SentenceEncoder(source, device="cuda", backend="torch").backbone.train()  # None: the built-in model
    vocab = int(getattr(backbone.config, "vocab_size", 1000))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, max(6, vocab), (batch_size, width), generator=generator).cuda()
    mask = torch.ones_like(ids)
    for _ in range(warmup):
        for bf16 in (False, True):
            _time_once(backbone, ids, mask, bf16)
            backbone.zero_grad(set_to_none=True)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for bf16 in (False, True):
            times[bf16].append(_time_once(backbone, ids, mask, bf16))
            backbone.zero_grad(set_to_none=True)
    del backbone
    torch.cuda.empty_cache()
    result = {"fp32_ms": round(statistics.median(times[False]), 3), "bf16_ms": round(statistics.median(times[True]), 3),
              "batch": batch_size, "width": width, "device": device_name}
    _CACHE[key] = result
    return result


def run_probe(config) -> Callable[[], dict] | None:
    """What `mixed_precision: auto` times on a GPU: this run's backbone at its batch size (one process only: processes that
    timed separately could choose differently)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    t, model = config.training, config.model
    return lambda: probe_precision(model.start_from or model.name, t.batch_size, model.max_seq_length, t.pad_to_multiple or 16)
