"""`auto` chosen by measurement: a short timed probe of each candidate backend, decided once and cached.

On a GPU, whether bf16 beats fp32 for a small encoder depends on the attention kernels, the
launch overhead and the PyTorch build, not on a capability flag: on one H200 the flag chose
bf16 and bf16 was the slowest path. So the first `auto` call for a model on a GPU encodes a
few hundred of its texts with every candidate, alternating, and keeps the fastest whose
embeddings stay within cosine `MIN_AUTO_COSINE` of fp32 (fp32 itself always qualifies; a tie
goes to fp32, the exact one). The decision is cached per encoder and weights, per process
for the model directory, device name and torch version, and in a JSON file when
`POLYHEAD_AUTO_CACHE` names one. A CPU keeps the capability rule unless `POLYHEAD_AUTO_PROBE=1`.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..similarity import row_cosines

PROBE_ENV = "POLYHEAD_AUTO_PROBE"
"""`1`: probe on every device (a CPU too); `0`: never probe (the capability rule everywhere); unset: probe on GPUs."""
CACHE_ENV = "POLYHEAD_AUTO_CACHE"
"""A JSON file where probe decisions are kept across processes (unset: in memory only)."""
PROBE_TEXTS = 512
"""Texts each candidate encodes per timed round (the call's own, sampled over lengths or cycled)."""
PROBE_ROUNDS = 3
"""Timed rounds per candidate after one warm-up run; the median counts."""
REFERENCE = "torch"

Timer = Callable[[], float]
"""A clock in seconds; on a GPU it synchronizes the device first, so queued work is counted."""
EncodeFn = Callable[[list[str]], np.ndarray]


@dataclass
class ProbeResult:
    """What a probe measured and chose."""

    choice: str
    """The backend `auto` stands for from now on."""
    seconds: dict[str, float]
    """Median seconds per candidate for one round of the probe texts."""
    min_cosine: dict[str, float]
    """Lowest cosine of each candidate's embeddings to fp32's on the probe texts."""


def probe_enabled(device_type: str) -> bool:
    """Whether `auto` on this device is decided by a probe (see `PROBE_ENV`)."""
    setting = os.environ.get(PROBE_ENV, "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    if setting:
        raise ValueError(f"{PROBE_ENV} must be 0 or 1, got {setting!r}")
    return device_type == "cuda"


def device_timer(device_type: str) -> Timer:
    """perf_counter, after a device synchronize on a GPU (its work is asynchronous)."""
    if device_type != "cuda":
        return time.perf_counter

    def timer() -> float:
        import torch

        torch.cuda.synchronize()
        return time.perf_counter()

    return timer


def decide(seconds: dict[str, float], min_cosine: dict[str, float], min_cos: float, reference: str = REFERENCE) -> str:
    """The fastest candidate within `min_cos` of the reference (which always qualifies; ties go to it)."""
    eligible = [name for name in seconds if name == reference or min_cosine.get(name, 0.0) >= min_cos]
    return min(eligible, key=lambda name: (seconds[name], name != reference))


def probe_texts(texts: list[str], count: int = PROBE_TEXTS) -> list[str]:
    """`count` texts: a sample spread over the call's lengths, or its texts cycled when it has fewer."""
    if not texts:
        return []
    if len(texts) < count:
        return [texts[i % len(texts)] for i in range(count)]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    picks = np.linspace(0, len(order) - 1, count).round().astype(int)
    return [texts[order[i]] for i in picks]


def run_probe(encoders: dict[str, EncodeFn], texts: list[str], timer: Timer, min_cos: float,
              rounds: int = PROBE_ROUNDS, reference: str = REFERENCE) -> ProbeResult:
    """Warm every candidate once (building twins, warming shapes), then time them alternately.

    A candidate other than the reference that fails on this model is left out (the reference's
    own failure is the caller's error, as it would be without a probe).
    """
    vectors = {}
    for name, encode in list(encoders.items()):
        try:
            vectors[name] = encode(texts)
        except Exception:  # noqa: BLE001 - a fast path this model cannot take is simply not chosen
            if name == reference:
                raise
    encoders = {name: encoders[name] for name in vectors}
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(rounds):
        for name, encode in encoders.items():
            start = timer()
            encode(texts)
            times[name].append(timer() - start)
    seconds = {name: statistics.median(values) for name, values in times.items()}
    cosines = {name: float(row_cosines(vectors[reference], v).min()) for name, v in vectors.items()}
    return ProbeResult(decide(seconds, cosines, min_cos, reference), seconds, cosines)


def store_key(source: str, device_name: str, torch_version: str) -> str:
    """What a decision is kept under across encoders and processes."""
    local = Path(source)
    return f"{local.resolve() if local.exists() else source} | {device_name} | torch {torch_version}"


class DecisionStore:
    """Probe decisions by `store_key`: in memory, and in a JSON file when given one."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._memory: dict[str, dict] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> "DecisionStore":
        path = os.environ.get(CACHE_ENV)
        return cls(Path(path) if path else None)

    def _read_file(self) -> dict[str, dict]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # a damaged cache is only a cache: probe again
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> ProbeResult | None:
        with self._lock:
            entry = self._memory.get(key) or self._read_file().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            return ProbeResult(**entry)
        except TypeError:
            return None

    def put(self, key: str, result: ProbeResult) -> None:
        with self._lock:
            self._memory[key] = asdict(result)
            if self.path is None:
                return
            data = self._read_file()
            data[key] = asdict(result)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)


_shared: DecisionStore | None = None


def shared_store() -> DecisionStore:
    """The process's store (its file from `POLYHEAD_AUTO_CACHE` as set when first used)."""
    global _shared
    if _shared is None:
        _shared = DecisionStore.from_env()
    return _shared
