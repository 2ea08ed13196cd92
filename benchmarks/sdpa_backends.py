"""Each scaled_dot_product_attention backend at all-MiniLM-L6-v2's shapes: the per-shape plan cost and the steady state.

    python benchmarks/sdpa_backends.py --json sdpa.json              # on a GPU: about 30-40 s
    python benchmarks/sdpa_backends.py --device cpu --batches 4 --calls 4 --repeats 1   # its mechanics on a CPU

Why: on Hopper, bf16 encoding and training ran slower than fp32, and a profile put most of the
time in attention. The suspect is cuDNN attention, which recent PyTorch tries first for bf16 and
which builds an execution plan for every new input shape; polyhead's `attention_backends()`
(polyhead/sdpa.py) leaves it out. This isolates that cost from the model.

Shapes: 12 heads of 32 dimensions (all-MiniLM-L6-v2), q/k/v laid out as BERT's attention
makes them (a (batch, length, 384) projection viewed and transposed), batch --batches. Lengths:
--calls distinct padded lengths in 17..128, none a multiple of 16 (a new shape every call, as
padding to the longest text gives), then the same lengths rounded up to a multiple of 16
(polyhead's length buckets: at most 7 shapes). Each with no mask and with a padding mask as
transformers passes it (bool, (batch, 1, length, length), True where a key is a real token),
forward only and forward + backward.

Per combination: the first call at each new shape (median; the per-shape plan cost is that minus
the steady state), the warmed steady state (median over --repeats more passes over the same
lengths), and the first pass over the sequence in all (what the start of an epoch pays). Each
backend is warmed once at length 16 (in neither set) before it is timed, so kernel loading is not
counted as a plan. On CUDA every clock read follows `torch.cuda.synchronize()`. A backend that
cannot run a combination (flash with a mask or in fp32, anything but math/flash on a CPU) is
reported as unavailable with PyTorch's reason. `default` is PyTorch's own choice, `polyhead` the
order polyhead uses. --json is rewritten after every backend, so a run cut short keeps what finished.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS: dict[str, list[SDPBackend] | None] = {
    "cudnn": [SDPBackend.CUDNN_ATTENTION],
    "flash": [SDPBackend.FLASH_ATTENTION],
    "efficient": [SDPBackend.EFFICIENT_ATTENTION],
    "math": [SDPBackend.MATH],
    "default": None,  # PyTorch's own priority order
    "polyhead": [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH],  # polyhead.sdpa.DEFAULT_ORDER
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
HEADS, HEAD_DIM = 12, 32
WARM_LENGTH = 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device (default: cuda if present)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"backends to time (default: {','.join(BACKENDS)})")
    parser.add_argument("--dtypes", default="fp32,bf16", help="fp32, bf16 or both (default: both)")
    parser.add_argument("--batches", default="32,256", help="batch sizes (default: 32,256)")
    parser.add_argument("--calls", type=int, default=24, help="distinct padded lengths per sequence (default: 24, at most 105)")
    parser.add_argument("--repeats", type=int, default=3, help="warmed passes over the sequence for the steady state (default: 3)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="start no new backend after this long (default: 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file (after each backend)")
    args = parser.parse_args(argv)
    unknown = [n for n in _names(args.backends) if n not in BACKENDS] + [n for n in _names(args.dtypes) if n not in DTYPES]
    if unknown:
        parser.error(f"unknown backend or dtype {unknown}; backends: {', '.join(BACKENDS)}; dtypes: {', '.join(DTYPES)}")
    if not 1 <= args.calls <= 105 or args.repeats < 1:
        parser.error("--calls must be 1..105 and --repeats positive")
    return args


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def length_sequences(calls: int, seed: int) -> dict[str, list[int]]:
    """`varying`: distinct lengths in 17..128 that are not multiples of 16; `x16`: the same rounded up to 16."""
    pool = [n for n in range(17, 129) if n % 16]
    varying = random.Random(seed).sample(pool, calls)
    return {"varying": varying, "x16": [16 * math.ceil(n / 16) for n in varying]}


def padding_mask(batch: int, length: int, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    """transformers' SDPA mask for a right-padded batch: bool (batch, 1, length, length), True = attend, the key
    padding expanded over the queries (stride 0) as transformers' masking_utils builds it; row 0 is full."""
    real = torch.randint(max(1, length // 4), length + 1, (batch,), generator=generator)
    real[0] = length
    keys = (torch.arange(length)[None, :] < real[:, None]).to(device)
    return keys[:, None, None, :].expand(batch, 1, length, length)


class Case:
    """One (batch, length, mask, pass) input set, made on the device once and reused: only the attention is timed."""

    def __init__(self, batch: int, length: int, dtype: torch.dtype, device: torch.device, masked: bool, backward: bool,
                 generator: torch.Generator) -> None:
        hidden = HEADS * HEAD_DIM

        def projected() -> torch.Tensor:
            x = torch.randn(batch, length, hidden, device=device, dtype=dtype)
            return x.view(batch, length, HEADS, HEAD_DIM).transpose(1, 2).requires_grad_(backward)

        self.q, self.k, self.v = projected(), projected(), projected()
        self.mask = padding_mask(batch, length, device, generator) if masked else None
        self.backward = backward
        self.grad_out = torch.randn(batch, HEADS, length, HEAD_DIM, device=device, dtype=dtype) if backward else None

    def reset(self) -> None:
        """Drop the last call's gradients (outside the clock), so no call pays for accumulating into them."""
        self.q.grad = self.k.grad = self.v.grad = None

    def run(self) -> None:
        out = F.scaled_dot_product_attention(self.q, self.k, self.v, attn_mask=self.mask)
        if self.backward:
            out.backward(self.grad_out)


def clock(device: torch.device) -> Callable[[], float]:
    """perf_counter, after a device synchronisation on CUDA."""
    if device.type == "cuda":
        def read() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()
        return read
    return time.perf_counter


def time_combination(backend: list[SDPBackend] | None, lengths: list[int], batch: int, dtype: torch.dtype, device: torch.device,
                     masked: bool, backward: bool, repeats: int, seed: int) -> dict:
    """First call per new shape, then the steady state; raises RuntimeError where the backend cannot run the combination."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cases = {length: Case(batch, length, dtype, device, masked, backward, generator) for length in [WARM_LENGTH, *dict.fromkeys(lengths)]}
    now = clock(device)
    context = (lambda: sdpa_kernel(backend)) if backend is not None else contextlib.nullcontext

    def once(length: int) -> float:
        case = cases[length]
        case.reset()
        with context():
            start = now()
            case.run()
            return now() - start

    once(WARM_LENGTH)  # kernel loading and the backend's one-time costs, at a shape in neither sequence
    seen: set[int] = set()
    first, sequence_s = [], 0.0
    for length in lengths:
        seconds = once(length)
        sequence_s += seconds
        if length not in seen:
            seen.add(length)
            first.append(seconds)
    steady, steady_pass = [], []
    for _ in range(repeats):
        pass_s = 0.0
        for length in lengths:
            seconds = once(length)
            steady.append(seconds)
            pass_s += seconds
        steady_pass.append(pass_s)
    first_ms, steady_ms = statistics.median(first) * 1e3, statistics.median(steady) * 1e3
    return {"shapes": len(seen), "first_call_ms": first_ms, "steady_ms": steady_ms, "plan_ms": first_ms - steady_ms,
            "first_pass_ms": sequence_s * 1e3, "steady_pass_ms": statistics.median(steady_pass) * 1e3}


def unavailable_reason(error: Exception, caught: list[warnings.WarningMessage]) -> str:
    """PyTorch's own explanation: the warnings it raised while refusing, else the error's first line."""
    lines = [str(w.message).strip().splitlines()[0] for w in caught if str(w.message).strip()]
    text = "; ".join(dict.fromkeys(lines)) or str(error).splitlines()[0]
    return text[:300]


def run(args: argparse.Namespace) -> list[dict]:
    device = torch.device(args.device)
    sequences = length_sequences(args.calls, args.seed)
    rows: list[dict] = []
    started = time.perf_counter()
    for backend_name in _names(args.backends):
        if time.perf_counter() - started > args.max_seconds:
            print(f"{backend_name}: skipped, past --max-seconds {args.max_seconds:g}", flush=True)
            rows.append({"backend": backend_name, "skipped": "past --max-seconds"})
            continue
        for dtype_name in _names(args.dtypes):
            for batch in (int(b) for b in _names(args.batches)):
                for lengths_name, lengths in sequences.items():
                    for masked in (False, True):
                        for backward in (False, True):
                            row = {"backend": backend_name, "dtype": dtype_name, "batch": batch, "lengths": lengths_name,
                                   "mask": masked, "pass": "fwd+bwd" if backward else "fwd"}
                            with warnings.catch_warnings(record=True) as caught:
                                warnings.simplefilter("always")
                                try:
                                    row.update(time_combination(BACKENDS[backend_name], lengths, batch, DTYPES[dtype_name], device,
                                                                masked, backward, args.repeats, args.seed))
                                except RuntimeError as error:
                                    row["unavailable"] = unavailable_reason(error, caught)
                            rows.append(row)
        print(f"{backend_name}: done at {time.perf_counter() - started:.1f} s", flush=True)
        if args.json:
            write_json(args, rows, sequences, time.perf_counter() - started)
    return rows


def write_json(args: argparse.Namespace, rows: list[dict], sequences: dict[str, list[int]], seconds: float) -> None:
    device = torch.device(args.device)
    payload = {"device": describe_device(device), "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
               "heads": HEADS, "head_dim": HEAD_DIM, "lengths": sequences, "repeats": args.repeats, "seconds": seconds, "rows": rows}
    args.json.write_text(json.dumps(payload, indent=2) + "\n")


def describe_device(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"


def print_rows(rows: list[dict]) -> None:
    header = ["backend", "dtype", "batch", "lengths", "mask", "pass", "shapes", "first ms", "steady ms", "plan ms", "1st pass ms", "warm pass ms"]
    table = [header]
    for r in rows:
        if "skipped" in r:
            continue
        key = [r["backend"], r["dtype"], str(r["batch"]), r["lengths"], "pad" if r["mask"] else "-", r["pass"]]
        if "unavailable" in r:
            table.append(key + ["n/a"] + [""] * 5)
        else:
            table.append(key + [str(r["shapes"])] + [f"{r[k]:.3f}" for k in ("first_call_ms", "steady_ms", "plan_ms")]
                         + [f"{r[k]:.1f}" for k in ("first_pass_ms", "steady_pass_ms")])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    reasons: dict[str, list[str]] = {}
    for r in rows:
        if "unavailable" in r:
            reasons.setdefault(r["unavailable"], []).append(f"{r['backend']} {r['dtype']}{' pad' if r['mask'] else ''} {r['pass']}")
    for reason, where in reasons.items():
        print(f"n/a ({', '.join(dict.fromkeys(where))}): {reason}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch sees no GPU here", file=sys.stderr)
        return 2
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"device: {describe_device(device)}; python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}); "
          f"{HEADS} heads x {HEAD_DIM}; lengths {length_sequences(args.calls, args.seed)['varying']}", flush=True)
    start = time.perf_counter()
    rows = run(args)
    print()
    print_rows(rows)
    print(f"\n{len(rows)} combinations in {time.perf_counter() - start:.1f} s; plan ms = first call at a new shape - steady state (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
