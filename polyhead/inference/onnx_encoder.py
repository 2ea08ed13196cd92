"""OnnxEncoder: an exported directory run by ONNX Runtime, with SentenceEncoder's `encode()`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from ..encoder import EncodeStats, check_encode_call, default_show_progress, warn_if_truncated
from ..tokenization import TextTokenizer
from .backends import check_backend
from .batching import ProgressCallback, run_with_progress
from .manifest import OnnxManifest, select_embedding
from .session import make_session
from .threads import get_threads

PRECISIONS = {"onnx": "fp32", "onnx-int8": "int8"}


class OnnxEncoder:
    """Embeds texts with an exported graph; no PyTorch model is loaded.

    `backend` picks the graph: `onnx` (fp32, the default) or `onnx-int8` (needs an export
    made with quantization; lossy, see `quantization_cost`). `auto` takes the int8 graph only
    when `max_int8_loss` is given and the cost measured at export is within it
    (`QuantizationCost.loss`: the larger of 1 - min cosine and any task's label-change share).
    """

    def __init__(
        self, path: str | Path, *, backend: str = "onnx", max_seq_length: int | None = None, max_int8_loss: float | None = None
    ) -> None:
        self.path = Path(path)
        self.manifest = OnnxManifest.load(self.path)
        self.requested_backend = backend
        self.max_int8_loss: float | None = None
        self.set_int8_budget(max_int8_loss)
        limit = self.manifest.max_seq_length
        if max_seq_length is not None and not 1 <= max_seq_length <= limit:
            raise ValueError(f"max_seq_length must be between 1 and {limit} (the exported model's limit), got {max_seq_length}")
        self.max_seq_length = max_seq_length or limit
        self.text_tokenizer = self._load_tokenizer()
        self.last_encode_stats = EncodeStats()
        self._sessions: dict[str, object] = {}

    # ------------------------------------------------------------------ properties
    @property
    def embedding_dim(self) -> int:
        return self.manifest.embedding_dim

    @property
    def normalize(self) -> bool:
        return self.manifest.normalize

    @property
    def pooling_mode(self) -> str:
        return self.manifest.pooling

    @property
    def quantization_cost(self):
        """The int8 graph's measured accuracy cost (a `QuantizationCost`), or None without one."""
        info = self.manifest.graphs.get("int8")
        return info.cost if info else None

    def _check_backend(self, backend: str | None) -> str:
        name = check_backend(backend or self.backend)
        if name == "auto":
            return self._auto_choice()
        if name not in PRECISIONS:
            raise ValueError(f"{self.path} is an exported ONNX model: use backend 'onnx' or 'onnx-int8', not {name!r}")
        if PRECISIONS[name] not in self.manifest.graphs:
            raise ValueError(f"{self.path} has no int8 graph; export it with quantization (polyhead export --quantize)")
        return name

    def set_int8_budget(self, max_int8_loss: float | None) -> None:
        """Let `auto` take the int8 graph when its recorded loss is at most `max_int8_loss` (None: never)."""
        if max_int8_loss is not None and not 0.0 <= max_int8_loss <= 1.0:
            raise ValueError(f"max_int8_loss must be between 0 and 1 (e.g. 0.01 for min cosine 0.99), got {max_int8_loss}")
        self.max_int8_loss = max_int8_loss
        self.backend = self._check_backend(self.requested_backend or "onnx")

    def _auto_choice(self) -> str:
        """`onnx-int8` when the user set a budget and the recorded int8 cost is within it, else `onnx`."""
        cost = self.quantization_cost
        if self.max_int8_loss is not None and cost is not None and cost.within(self.max_int8_loss):
            return "onnx-int8"
        return "onnx"

    def _load_tokenizer(self) -> TextTokenizer:
        tokenizer_json = self.path / "tokenizer.json"
        if tokenizer_json.is_file():
            return TextTokenizer.from_file(tokenizer_json, self.max_seq_length, self.manifest.pad_token_id)
        from transformers import AutoTokenizer

        return TextTokenizer(AutoTokenizer.from_pretrained(str(self.path)), self.max_seq_length, self.manifest.pad_token_id)

    def session(self, backend: str | None = None):
        """The ONNX Runtime session of the graph `backend` selects, created on first use."""
        precision = PRECISIONS[self._check_backend(backend)]
        if precision not in self._sessions:
            self._sessions[precision] = make_session(self.path / self.manifest.graphs[precision].file)
        return self._sessions[precision]

    # ------------------------------------------------------------------ running
    def run_texts(
        self,
        items: list[str],
        batch_size: int,
        backend: str | None,
        show_progress: bool | None,
        progress: ProgressCallback | None,
    ) -> dict[str, np.ndarray]:
        """Every graph output for `items`, in input order; updates `last_encode_stats`."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        chosen = self._check_backend(backend)
        session = self.session(chosen)
        names = self.manifest.outputs
        tokenized = self.text_tokenizer.tokenize(items)
        self.last_encode_stats = EncodeStats.of(tokenized.lengths, tokenized.truncated, chosen)
        warn_if_truncated(tokenized.truncated, len(items), self.max_seq_length)
        if not items:
            return {name: np.empty((0, self.embedding_dim), np.float32) for name in names}

        def run(input_ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
            return dict(zip(names, session.run(None, {"input_ids": input_ids, "attention_mask": mask})))

        return run_with_progress(
            tokenized.ids,
            run,
            batch_size=batch_size,
            pad_id=self.text_tokenizer.pad_id,
            workers=get_threads(),
            show_progress=default_show_progress(show_progress, len(items), batch_size),
            progress=progress,
        )

    def encode(
        self,
        texts: str | list[str],
        batch_size: int = 32,
        normalize: bool | None = None,
        show_progress: bool | None = None,
        output: Literal["numpy", "torch"] = "numpy",
        *,
        backend: str | None = None,
        progress: ProgressCallback | None = None,
    ):
        """Embed texts; same contract as `SentenceEncoder.encode` (input order, truncation warning)."""
        single, items = check_encode_call(texts, batch_size, output)
        outputs = self.run_texts(items, batch_size, backend, show_progress, progress)
        result = select_embedding(outputs, normalize, self.normalize)
        if single:
            result = result[0]
        if output == "torch":
            import torch

            return torch.from_numpy(np.ascontiguousarray(result))
        return result

    def __repr__(self) -> str:
        return f"OnnxEncoder({str(self.path)!r}, backend={self.backend!r})"
