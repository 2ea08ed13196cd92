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
from .auto_probe import DecisionStore, ProbeResult, Timer
from .batching import BatchRunner
from .device_pipeline import PipelineOptions

PROBE_TEXTS = 16
"""Texts the automatic bf16 choice is checked on (spread over the call's lengths)."""
INT8_COST_TEXTS = 64
"""Texts the in-memory int8 graph's accuracy cost is measured on."""


class LossyBackendWarning(UserWarning):
    """A backend whose embeddings differ measurably from fp32 was used; the message gives the cost."""


class AutoFallbackWarning(UserWarning):
    """The automatic choice fell back to fp32 because bf16 drifted too far on this model."""


class TorchRunner:
    """The encoder's own forward in fp32, or in bf16 on a twin with bf16 Linear weights.

    On a GPU, `encode` goes through `pipeline` (tokenizing ahead on worker threads, batches by
    tokens in length buckets, outputs kept on the device) and every forward runs under
    `attention_backends()`, which keeps cuDNN's per-shape attention plans out.
    """

    def __init__(self, encoder, precision: str) -> None:
        self.encoder = encoder
        self.precision = precision
        self.backbone = encoder.backbone
        self.device = encoder.device
        self.pipeline: PipelineOptions | None = PipelineOptions.for_device() if self.device.type == "cuda" else None
        """How `encode` feeds the device; None: the CPU's batch-per-worker path (`run_batches`)."""
        if self.device.type == "cpu":
            from .allocator import keep_freed_memory

            keep_freed_memory()
        if precision == "bf16":
            from .bf16 import bf16_twin, packing_works

            # On a GPU: bf16 Linear weights cast once (autocast would cast them on every call), SDPA throughout.
            on_cpu = self.device.type == "cpu"
            self.backbone = bf16_twin(encoder.backbone, pack=on_cpu and packing_works(), short_attention=on_cpu)

    def _context(self):
        stack = contextlib.ExitStack()
        if self.precision == "bf16":
            stack.enter_context(torch.autocast(self.device.type, dtype=torch.bfloat16))
        if self.device.type == "cuda":
            from ..sdpa import attention_backends

            stack.enter_context(attention_backends())
        return stack

    def device_forward(self, normalize: bool | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """(input_ids, attention_mask) already on the device -> float32 embeddings left on the device."""

        def forward(ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), self._context():
                tokens = self.backbone(input_ids=ids, attention_mask=attention)[0]
                return self.encoder.embed_tokens(tokens.float(), attention, normalize).float()

        return forward

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
        self.timer: Timer | None = None
        """The probe's clock; None: the device's (synchronizing on a GPU)."""
        self.store: DecisionStore | None = None
        """Where probe decisions are kept; None: the process's shared store."""
        self.last_probe: ProbeResult | None = None
        """The probe decision `auto` last used (measured or remembered), for reports."""

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
        """Measured where a probe applies (a GPU), else bf16 where the hardware has it; bf16 only within cosine 0.999."""
        if self._auto is not None and self._auto[0] == key:
            return self._auto[1]
        from .auto_probe import probe_enabled

        measured_now = False
        if probe_enabled(encoder.device.type) and texts:
            choice, measured_now = self._probed_choice(encoder, key, texts)
        else:
            choice = auto_backend(encoder.device.type)
        # A probe run now has just checked bf16's cosine on its own texts; a remembered or rule-based choice is checked here.
        if choice == "torch-bf16" and not measured_now and not self._bf16_close_enough(encoder, key, texts):
            choice = "torch"
        self._auto = (key, choice)
        return choice

    def _bf16_close_enough(self, encoder, key: tuple, texts: list[str]) -> bool:
        bf16 = self._get(encoder, "torch-bf16", key, lambda: TorchRunner(encoder, "bf16"))
        worst = bf16_keeps_accuracy(encoder, bf16, _probe(texts, PROBE_TEXTS))
        if worst >= MIN_AUTO_COSINE:
            return True
        warnings.warn(
            f"bf16 embeddings of this model reach only cosine {worst:.4f} of fp32 (< {MIN_AUTO_COSINE}); "
            "backend 'auto' uses fp32 for it",
            AutoFallbackWarning,
            stacklevel=5,
        )
        return False

    def _probed_choice(self, encoder, key: tuple, texts: list[str]) -> tuple[str, bool]:
        """The probe's choice for this model and device, and whether it was measured now (else remembered: memory, optional file)."""
        from .auto_probe import device_timer, probe_texts, run_probe, shared_store, store_key
        from .backends import bf16_available

        device = encoder.device
        store = self.store if self.store is not None else shared_store()
        where = store_key(encoder.source, _device_name(device), torch.__version__)
        known = store.get(where)
        if known is not None:
            self.last_probe = known
            return known.choice, False  # a bf16 choice is still checked against these weights by the caller
        candidates = ["torch", "torch-bf16"] if device.type == "cpu" or bf16_available(device.type) else ["torch"]

        def encode_with(name: str):
            return lambda items: encoder.encode(items, backend=name, show_progress=False)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncation of probe texts is the real call's to report
            result = run_probe({name: encode_with(name) for name in candidates}, probe_texts(texts),
                               self.timer or device_timer(device.type), MIN_AUTO_COSINE)
        drift = result.min_cosine.get("torch-bf16", 1.0)
        if drift < MIN_AUTO_COSINE and result.seconds.get("torch-bf16", float("inf")) < result.seconds["torch"]:
            warnings.warn(
                f"bf16 was faster but its embeddings of this model reach only cosine {drift:.4f} of fp32 "
                f"(< {MIN_AUTO_COSINE}); backend 'auto' uses fp32 for it",
                AutoFallbackWarning,
                stacklevel=5,
            )
        store.put(where, result)
        self.last_probe = result
        return result.choice, True


def _device_name(device: torch.device) -> str:
    """The accelerator's model name (a probe's decision holds for that hardware), or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from .hardware import cpu_info

    return f"cpu {cpu_info().model}"


register_runner_cache(RunnerCache)
