"""Per-backend batch runners for a SentenceEncoder, built once and rebuilt when its weights change.

A runner turns a padded batch of token ids into embeddings. The bf16 and ONNX runners
hold derived copies of the weights (a bf16 twin, an ONNX graph), so they are cached on
the encoder and keyed by the identity and version counter of every parameter: an
optimizer step, `load_state_dict` or `.to()` makes the next `encode` rebuild them.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..modes import weights_key
from ..runner_registry import register_runner_cache
from ..similarity import row_cosines
from ..task_adapters import ADAPTER_MARK
from .backends import MIN_AUTO_COSINE, auto_backend, check_backend
from .batching import BatchRunner

PROBE_TEXTS = 16
"""Texts the automatic bf16 choice is checked on (spread over the call's lengths)."""
INT8_COST_TEXTS = 64
"""Texts the in-memory int8 graph's accuracy cost is measured on."""


class LossyBackendWarning(UserWarning):
    """A backend whose embeddings differ measurably from fp32 was used; the message gives the cost."""


class AutoFallbackWarning(UserWarning):
    """The automatic choice fell back to fp32 because bf16 drifted too far on this model."""


class TorchRunner:
    """The encoder's own forward in fp32, or in bf16 on a twin with bf16 Linear weights."""

    def __init__(self, encoder, precision: str) -> None:
        self.encoder = encoder
        self.precision = precision
        self.backbone = encoder.backbone
        self.device = encoder.device
        if self.device.type == "cpu":
            from .allocator import keep_freed_memory

            keep_freed_memory()
        if precision == "bf16" and self.device.type == "cpu":
            from .bf16 import bf16_twin, packing_works

            self.backbone = bf16_twin(encoder.backbone, pack=packing_works())

    def _context(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def batch_runner(self, normalize: bool | None) -> BatchRunner:
        def run(input_ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
            with torch.inference_mode(), self._context():
                ids = torch.from_numpy(input_ids).to(self.device, non_blocking=True)
                attention = torch.from_numpy(mask).to(self.device, non_blocking=True)
                tokens = self.backbone(input_ids=ids, attention_mask=attention)[0]
                embeddings = self.encoder.embed_tokens(tokens.float(), attention, normalize)
            return {"embedding": embeddings.float().cpu().numpy()}

        return run

    @property
    def workers(self) -> int:
        from .threads import get_threads

        return get_threads() if self.device.type == "cpu" else 1


class GraphRunner:
    """An in-memory ONNX export of the encoder, run by ONNX Runtime on the CPU."""

    def __init__(self, encoder, precision: str, reference_texts: list[str]) -> None:
        from .export import ExportOptions, write_export
        from .session import make_session

        options = ExportOptions(quantize=precision == "int8", reference_texts=reference_texts, reference_source="texts of this call")
        with tempfile.TemporaryDirectory(prefix="polyhead-onnx-") as tmp:
            manifest = write_export(encoder, {}, [], Path(tmp), options)
            graph = manifest.graphs[precision]
            self.session = make_session(Path(tmp) / graph.file)
        self.outputs = manifest.outputs
        self.normalizes = manifest.normalize
        self.cost = graph.cost
        if self.cost is not None:
            warnings.warn(f"backend 'onnx-int8' is lossy: {self.cost.summary()}", LossyBackendWarning, stacklevel=4)

    def batch_runner(self, normalize: bool | None) -> BatchRunner:
        from .manifest import select_embedding

        def run(input_ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
            outputs = dict(zip(self.outputs, self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})))
            return {"embedding": select_embedding(outputs, normalize, self.normalizes)}

        return run

    @property
    def workers(self) -> int:
        from .threads import get_threads

        return get_threads()


Runner = TorchRunner | GraphRunner


def _probe(texts: list[str], count: int) -> list[str]:
    """Up to `count` texts spread evenly over the list sorted by length (short, medium, long)."""
    if len(texts) <= count:
        return list(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    picks = np.linspace(0, len(order) - 1, count).round().astype(int)
    return [texts[order[i]] for i in sorted(set(picks))]


def bf16_keeps_accuracy(encoder, bf16: TorchRunner, texts: list[str]) -> float:
    """Lowest cosine between bf16 and fp32 embeddings of `texts` (1.0 for no texts)."""
    if not texts:
        return 1.0
    ids = encoder.text_tokenizer.tokenize(texts).ids
    from .batching import run_batches

    reference = run_batches(ids, TorchRunner(encoder, "fp32").batch_runner(False), batch_size=len(ids), pad_id=encoder.text_tokenizer.pad_id)
    fast = run_batches(ids, bf16.batch_runner(False), batch_size=len(ids), pad_id=encoder.text_tokenizer.pad_id)
    return float(row_cosines(reference["embedding"], fast["embedding"]).min())


class RunnerCache:
    """The runners of one encoder, each rebuilt when the encoder's weights change."""

    def __init__(self) -> None:
        self._runners: dict[str, tuple[tuple, Runner]] = {}
        self._auto: tuple[tuple, str] | None = None
        self._lock = threading.RLock()  # concurrent encode calls build each runner once

    # A copied or pickled encoder starts with an empty cache (its runners are derived data).
    def __deepcopy__(self, memo: dict) -> "RunnerCache":
        return RunnerCache()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def _get(self, encoder, backend: str, key: tuple, build: Callable[[], Runner]) -> Runner:
        cached = self._runners.get(backend)
        if cached is not None and cached[0] == key:
            return cached[1]
        runner = build()
        self._runners[backend] = (key, runner)
        return runner

    def resolve(self, encoder, backend: str, texts: list[str]) -> tuple[str, Runner]:
        """(concrete backend, its runner) for `backend` (which may be `auto`)."""
        backend = check_backend(backend)
        with self._lock:
            return self._resolve(encoder, backend, texts)

    def _resolve(self, encoder, backend: str, texts: list[str]) -> tuple[str, Runner]:
        key = (weights_key(encoder), encoder.device)
        if backend != "torch" and any(ADAPTER_MARK in name for name, _ in encoder.backbone.named_parameters()):
            # LoRA adapters (per-task, switched per call, or in training) run in the live module: no twin, no graph.
            return "torch", self._get(encoder, "torch", key, lambda: TorchRunner(encoder, "fp32"))
        if backend == "auto":
            backend = self._auto_choice(encoder, key, texts)
        if backend in ("torch", "torch-bf16"):
            precision = "bf16" if backend == "torch-bf16" else "fp32"
            return backend, self._get(encoder, backend, key, lambda: TorchRunner(encoder, precision))
        precision = "int8" if backend == "onnx-int8" else "fp32"
        # The cost sample is drawn only when the graph is built, not on every call that reuses it.
        return backend, self._get(encoder, backend, key, lambda: GraphRunner(encoder, precision, _probe(texts, INT8_COST_TEXTS)))

    def _auto_choice(self, encoder, key: tuple, texts: list[str]) -> str:
        """bf16 where the hardware has it and this model's bf16 embeddings stay close to fp32."""
        if self._auto is not None and self._auto[0] == key:
            return self._auto[1]
        choice = auto_backend(encoder.device.type)
        if choice == "torch-bf16":
            bf16 = self._get(encoder, choice, key, lambda: TorchRunner(encoder, "bf16"))
            worst = bf16_keeps_accuracy(encoder, bf16, _probe(texts, PROBE_TEXTS))
            if worst < MIN_AUTO_COSINE:
                warnings.warn(
                    f"bf16 embeddings of this model reach only cosine {worst:.4f} of fp32 (< {MIN_AUTO_COSINE}); "
                    "backend 'auto' uses fp32 for it",
                    AutoFallbackWarning,
                    stacklevel=4,
                )
                choice = "torch"
        self._auto = (key, choice)
        return choice


register_runner_cache(RunnerCache)
