"""SentenceEncoder: any Hugging Face backbone + pooling + optional L2 normalization."""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer

from . import __version__
from .fileio import atomic_directory
from .linked_weights import LinkedWrites
from .modes import eval_mode, tensors_key
from .pooling import Pooling, PoolingMode
from .resolve import join_source, model_source, resolve_file
from .st_format import SentenceTransformerLayout, layout_file_names, read_layout, write_layout
from .tokenization import TextTokenizer


BACKBONE_WEIGHTS = "model.safetensors"
"""The file transformers' save_pretrained writes a backbone's weights to (unless it shards them)."""


class TruncationWarning(UserWarning):
    """Some texts were longer than `max_seq_length` tokens and were cut."""


@dataclass
class EncodeStats:
    """What the last `encode` call did, for callers that need the numbers."""

    texts: int = 0
    """Number of texts encoded."""
    tokens: int = 0
    """Number of real (unpadded) tokens after truncation."""
    truncated: int = 0
    """Number of texts cut at `max_seq_length`."""
    backend: str = ""
    """The concrete backend that computed them (what `auto` chose)."""
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Each text's real token count, in input order (a server's per-request usage, without tokenizing twice)."""

    @classmethod
    def of(cls, lengths: np.ndarray, truncated: int, backend: str) -> "EncodeStats":
        """The stats of a call whose texts had these token `lengths`."""
        return cls(len(lengths), int(lengths.sum()), truncated, backend, lengths)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_texts(texts: object) -> list[str]:
    """A list of strings, or TypeError naming the first bad item's index."""
    if isinstance(texts, (str, bytes)) or not hasattr(texts, "__iter__"):
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}")
    items = list(texts)  # type: ignore[call-overload]
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is {type(text).__name__}, expected str")
    return items


def check_encode_call(texts: object, batch_size: int, output: str) -> tuple[bool, list[str]]:
    """(a single string was given, the texts as a list), or the error `encode` raises."""
    single = isinstance(texts, str)
    items = [texts] if single else check_texts(texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if output not in ("numpy", "torch"):
        raise ValueError(f"output must be 'numpy' or 'torch', got {output!r}")
    return single, items  # type: ignore[return-value]


def warn_if_truncated(truncated: int, total: int, max_seq_length: int, stacklevel: int = 3) -> None:
    """One TruncationWarning per call that cut any text, pointing at the caller of `encode`."""
    if truncated:
        warnings.warn(
            f"{truncated} of {total} texts were longer than max_seq_length={max_seq_length} tokens and were truncated",
            TruncationWarning,
            stacklevel=stacklevel,
        )


def default_show_progress(show_progress: bool | None, texts: int, batch_size: int) -> bool:
    """A bar by default only on a terminal and for more than four batches."""
    if show_progress is None:
        return sys.stderr.isatty() and texts > batch_size * 4
    return show_progress


def _read_layout(source: str) -> SentenceTransformerLayout | None:
    modules_file = resolve_file(source, "modules.json")
    if modules_file is None:
        return None
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    files: dict[str, Path | None] = {"modules.json": modules_file}
    for name in layout_file_names(modules):
        files[name] = resolve_file(source, name)
    return read_layout(files)


class SentenceEncoder(nn.Module):
    """Backbone + pooling + optional normalization, turning texts into fixed-length vectors.

    `SentenceEncoder()` loads the built-in all-MiniLM-L6-v2 without a network. Any name or
    directory that `transformers.AutoModel` accepts works, and a sentence-transformers
    directory brings its own pooling, normalization and `max_seq_length`; arguments given
    here override them. `backend` is how `encode` computes (see `polyhead.inference.backends`):
    `auto` (the default) uses bf16 where the CPU supports it, on a GPU whichever of fp32 and
    bf16 a timed probe finds faster, and keeps every embedding within cosine 0.999 of fp32;
    `torch` is bit-exact fp32.
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        *,
        pooling: PoolingMode | None = None,
        normalize: bool | None = None,
        max_seq_length: int | None = None,
        device: str | torch.device | None = None,
        trust_remote_code: bool = False,
        backend: str | None = None,
        truncation: str = "head",
    ) -> None:
        super().__init__()
        from .inference.backends import check_backend, default_backend
        from .runner_registry import new_runner_cache

        # encode()'s default: auto unless $POLYHEAD_BACKEND says otherwise.
        self.backend = check_backend(backend) if backend is not None else default_backend()
        self._runners = new_runner_cache()  # how batches are computed: plugged in by polyhead.inference
        self._weight_files = LinkedWrites()  # the backbone file a save wrote, linked by the next while unchanged
        source = model_source(model_name_or_path)
        layout = _read_layout(source)
        backbone_source = join_source(source, layout.transformer_path) if layout else source
        self.source = source
        self.backbone = AutoModel.from_pretrained(
            backbone_source, dtype=torch.float32, trust_remote_code=trust_remote_code
        )
        self.tokenizer = AutoTokenizer.from_pretrained(backbone_source, trust_remote_code=trust_remote_code)
        # The backbone's own pooler output is never used: keep its weights (they seed
        # cls_pooler and keep saved checkpoints complete) but out of training.
        backbone_pooler = getattr(self.backbone, "pooler", None)
        if isinstance(backbone_pooler, nn.Module):
            backbone_pooler.requires_grad_(False)

        saved_mode = None
        if layout is not None and layout.pooling is not None:
            saved_mode = "cls_pooler" if layout.dense_path else layout.pooling
        mode = pooling or saved_mode or "mean"
        self.pooling = Pooling(self.hidden_size, mode)
        if mode == "cls_pooler":
            if saved_mode == "cls_pooler" and layout is not None and layout.dense_path:
                self._load_dense(join_source(source, layout.dense_path))
            else:
                self.pooling.init_dense_from(self.backbone)

        self.normalize = bool(normalize if normalize is not None else (layout.normalize if layout else False))
        self.max_seq_length = int(max_seq_length or (layout and layout.max_seq_length) or self._model_max_length())
        self.text_tokenizer = TextTokenizer(self.tokenizer, self.max_seq_length, truncation=truncation)
        self.last_encode_stats = EncodeStats()
        self.eval()
        self.to(device if device is not None else default_device())

    # ------------------------------------------------------------------ properties
    @property
    def truncation(self) -> str:
        """What a text longer than max_seq_length keeps: head, tail or head+tail (see polyhead.truncation)."""
        return self.text_tokenizer.truncation

    @truncation.setter
    def truncation(self, side: str) -> None:
        self.text_tokenizer = TextTokenizer(self.tokenizer, self.max_seq_length, self.text_tokenizer.pad_id, side)

    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.hidden_size)

    @property
    def embedding_dim(self) -> int:
        """Length of the vectors `encode` returns."""
        return self.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def pooling_mode(self) -> str:
        return self.pooling.mode

    def _model_max_length(self) -> int:
        limits = [int(self.tokenizer.model_max_length)]
        positions = getattr(self.backbone.config, "max_position_embeddings", None)
        if positions:
            # RoBERTa-style embeddings number positions from padding_idx + 1, so that many
            # slots of the position table are never available to tokens.
            embeddings = getattr(self.backbone, "embeddings", None)
            offset = getattr(embeddings, "padding_idx", None)
            limits.append(int(positions) - (int(offset) + 1 if offset is not None else 0))
        return min(x for x in limits if x < 1_000_000) if any(x < 1_000_000 for x in limits) else 512

    def _load_dense(self, dense_dir: str) -> None:
        weights_file = resolve_file(dense_dir, "model.safetensors")
        if weights_file is None:
            raise FileNotFoundError(f"{dense_dir}: the cls_pooler Dense module has no model.safetensors")
        weights = load_file(str(weights_file))
        assert self.pooling.dense is not None
        self.pooling.dense.load_state_dict({"weight": weights["linear.weight"], "bias": weights["linear.bias"]})

    # ------------------------------------------------------------------ forward
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, normalize: bool | None = None
    ) -> torch.Tensor:
        """Sentence embeddings of a padded batch."""
        output = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return self.embed_tokens(output[0], attention_mask, normalize)

    def embed_tokens(
        self, token_embeddings: torch.Tensor, attention_mask: torch.Tensor, normalize: bool | None = None
    ) -> torch.Tensor:
        """Pooling and optional L2 normalization of the backbone's token embeddings."""
        embeddings = self.pooling(token_embeddings, attention_mask)
        if self.normalize if normalize is None else normalize:
            embeddings = F.normalize(embeddings.float(), p=2, dim=-1)
        return embeddings

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Pad a batch of texts in their given order (for training loops)."""
        batch, _ = self.text_tokenizer(texts)
        return batch

    # ------------------------------------------------------------------ encode
    def encode(
        self,
        texts: str | list[str],
        batch_size: int = 32,
        normalize: bool | None = None,
        show_progress: bool | None = None,
        output: Literal["numpy", "torch"] = "numpy",
        *,
        backend: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Embed texts; returns an array of shape (len(texts), embedding_dim) in input order.

        Texts are tokenized once, sorted by length so each batch pads little, and padded
        per batch; on a CPU, batches run in parallel, one per core. On a GPU, texts are
        tokenized on worker threads ahead of the device and batched by tokens
        (`polyhead.inference.device_pipeline`; `batch_size` applies to the CPU). Texts longer than
        `max_seq_length` tokens are cut: a `TruncationWarning` says how many, and
        `last_encode_stats.truncated` holds the count. `backend` overrides the encoder's
        own (`auto`, `torch`, `torch-bf16`, `onnx`, `onnx-int8`); `progress` is called
        after each batch with (texts, tokens) done in it.
        """
        from .inference.batching import run_with_progress

        single, items = check_encode_call(texts, batch_size, output)
        with eval_mode(self):  # no dropout, even when called from inside a training loop
            chosen, runner = self._runners.resolve(self, self.backend if backend is None else backend, items)
            if items and getattr(runner, "pipeline", None) is not None:
                on_device = self._encode_pipelined(items, runner, normalize, show_progress, progress, chosen)
                if output == "torch":
                    return on_device[0] if single else on_device
                result = on_device.cpu().numpy()  # the call's one device-to-host copy
                return result[0] if single else result
            tokenized = self.text_tokenizer.tokenize(items)
            warn_if_truncated(tokenized.truncated, len(items), self.max_seq_length)
            result = np.empty((len(items), self.embedding_dim), dtype=np.float32)
            self.last_encode_stats = EncodeStats.of(tokenized.lengths, tokenized.truncated, chosen)
            if items:
                result = run_with_progress(
                    tokenized.ids,
                    runner.batch_runner(normalize),
                    batch_size=batch_size,
                    pad_id=self.text_tokenizer.pad_id,
                    workers=runner.workers,
                    show_progress=default_show_progress(show_progress, len(items), batch_size),
                    progress=progress,
                )["embedding"]
        if single:
            result = result[0]
        return torch.from_numpy(result).to(self.device) if output == "torch" else result

    def _encode_pipelined(self, items: list[str], runner, normalize: bool | None, show_progress: bool | None,
                          progress: Callable[[int, int], None] | None, chosen: str) -> torch.Tensor:
        """The device path (a GPU): tokenizing overlapped with the device, rows left on the device."""
        from .inference.batching import progress_reporter
        from .inference.device_pipeline import run_pipelined

        enabled = default_show_progress(show_progress, len(items), runner.pipeline.first_chunk_texts)
        with progress_reporter(len(items), enabled, progress) as report:
            result = run_pipelined(items, self.text_tokenizer, runner.device_forward(normalize), self.device,
                                   self.embedding_dim, runner.pipeline, report)
        self.last_encode_stats = EncodeStats.of(result.lengths, result.truncated, chosen)
        warn_if_truncated(result.truncated, len(items), self.max_seq_length, stacklevel=4)
        return result.embeddings

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        """Write a sentence-transformers directory (safetensors weights) atomically."""
        path = Path(path)
        with atomic_directory(path) as tmp:
            self.save_to(tmp)
        return path

    def save_to(self, directory: Path, previous: Path | None = None) -> None:
        """Write the encoder's files into an existing directory (no atomic swap).

        `previous`: a directory this encoder saved before (a run's best-model copy); its backbone weights are
        linked rather than written again when they have not changed since (a frozen encoder)."""
        key = tensors_key(self.backbone.state_dict().items())
        source = previous / BACKBONE_WEIGHTS if previous is not None else None
        if source is not None and self._weight_files.reuse("backbone", key, source, directory / BACKBONE_WEIGHTS):
            self.backbone.config.save_pretrained(directory)
        else:
            self.backbone.save_pretrained(directory)
            if (directory / BACKBONE_WEIGHTS).is_file():  # one file (not shards): linkable next time
                self._weight_files.record("backbone", key, directory / BACKBONE_WEIGHTS)
        self.tokenizer.save_pretrained(directory)
        versions = {"polyhead": __version__, "transformers": _version("transformers"), "pytorch": torch.__version__}
        dense_dir = write_layout(
            directory,
            hidden_size=self.hidden_size,
            pooling=self.pooling_mode,
            normalize=self.normalize,
            max_seq_length=self.max_seq_length,
            versions=versions,
        )
        if dense_dir is not None and self.pooling.dense is not None:
            dense = self.pooling.dense
            save_file(
                {"linear.weight": dense.weight.detach().cpu().contiguous(), "linear.bias": dense.bias.detach().cpu().contiguous()},
                str(directory / dense_dir / "model.safetensors"),
            )

    @classmethod
    def load(cls, path: str | Path, **overrides: object) -> "SentenceEncoder":
        """Load a directory written by `save` or by sentence-transformers."""
        return cls(path, **overrides)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"source={self.source!r}, max_seq_length={self.max_seq_length}, normalize={self.normalize}"


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
