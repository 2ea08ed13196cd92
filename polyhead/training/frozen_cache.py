"""Frozen lower parts computed once: the cache between the data and the trainable part.

When, for a phase, everything below some point of the encoder is frozen, that part's
output for a text never changes (frozen parts run in eval mode: no dropout), so it is
computed once per training example and reused in later epochs. The cut is found from what
is frozen, highest first:

- `encoder`: backbone and pooler frozen; the heads train on cached sentence embeddings,
  computed up front with `encode` (its fast backend when the run trains in bf16);
- `backbone`: backbone frozen, a trainable `cls_pooler`; cached token states, pooling trains;
- `layer N`: embeddings and layers 0..N-1 frozen; cached hidden states entering layer N,
  only the layers above run forward and backward.

Token states are filled lazily in fixed, length-sorted chunks of examples, so a value
never depends on which batch first asked for it (a resumed run reads the same numbers as
an uninterrupted one). The cache holds fp32 and lives in memory up to a budget; a task
whose cache does not fit goes to a memory-mapped file in the run directory. A phase that
moves the cut drops the cache.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..encoder import TruncationWarning
from ..model import MultiTaskModel
from ..sdpa import attention_backends
from ..tokenization import TextTokenizer
from .device_ids import PackedIds, host_to_device, padded_positions
from .layer_split import hidden_below, run_above
from .parts import ModelParts

CHUNK_SIZE = 64
"""Examples per fill of a token-state cache (length-sorted, so chunks pad little)."""


@dataclass(frozen=True)
class Cut:
    """Where the frozen part of the encoder ends for a phase."""

    kind: str
    """none, layer, backbone or encoder."""
    layer: int = 0
    """For `layer`: how many transformer layers lie below the cut."""

    @property
    def caches(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        return {
            "none": "nothing frozen below the trainable parts: no cache",
            "layer": f"embeddings and layers 0-{self.layer - 1} frozen: their hidden states are cached",
            "backbone": "backbone frozen: its token states are cached, the pooler trains",
            "encoder": "encoder frozen: sentence embeddings are cached, only the heads run",
        }[self.kind]


NO_CUT = Cut("none")


def find_cut(parts: ModelParts, frozen: set[str]) -> Cut:
    """The highest point of the encoder below which every parameter is frozen."""
    frozen_layers = 0
    for layer in parts.layers:
        if not all(name in frozen for name in layer):
            break
        frozen_layers += 1
    if not all(name in frozen for name in parts.embeddings):
        return NO_CUT
    if frozen_layers == parts.num_layers:
        pooler_frozen = all(name in frozen for name in parts.pooler)
        return Cut("encoder") if pooler_frozen else Cut("backbone")
    return Cut("layer", frozen_layers) if frozen_layers else NO_CUT


class TokenStateCache:
    """Per-example token states (length x hidden) of one task, in one flat fp32 buffer.

    With `device` (a GPU run whose cache fits its budget) the buffer lives on that device and a
    batch is gathered there, so reading the cache moves nothing between host and device.
    """

    def __init__(self, lengths: np.ndarray, hidden: int, spill_file: Path | None, device: torch.device | None = None) -> None:
        self.lengths = lengths.astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        shape = (int(self.offsets[-1]), hidden)
        self.spill_file = spill_file
        self.device = device if spill_file is None else None
        self.device_rows: torch.Tensor | None = None
        if self.device is not None:
            self.rows = np.empty((0, hidden), dtype=np.float32)
            self.device_rows = torch.empty(shape, dtype=torch.float32, device=self.device)
            self.device_offsets = torch.from_numpy(self.offsets[:-1].copy()).to(self.device)
            self.device_lengths = torch.from_numpy(self.lengths).to(self.device)
        elif spill_file is None:
            self.rows = np.empty(shape, dtype=np.float32)
        else:
            spill_file.parent.mkdir(parents=True, exist_ok=True)
            self.rows = np.memmap(spill_file, dtype=np.float32, mode="w+", shape=shape)
        self.filled = np.zeros(len(lengths), dtype=bool)
        # Fixed chunks of length-sorted examples: each example's value comes from one
        # deterministic forward pass, whatever batch first needs it.
        order = np.lexsort((np.arange(len(lengths)), self.lengths))
        self.chunks = [order[i : i + CHUNK_SIZE] for i in range(0, len(order), CHUNK_SIZE)]
        self.chunk_of = np.empty(len(lengths), dtype=np.int64)
        for number, chunk in enumerate(self.chunks):
            self.chunk_of[chunk] = number

    @staticmethod
    def nbytes(lengths: np.ndarray, hidden: int) -> int:
        return int(lengths.sum()) * hidden * 4

    def missing_chunks(self, indices: list[int]) -> list[np.ndarray]:
        numbers = sorted({int(self.chunk_of[i]) for i in indices if not self.filled[i]})
        return [self.chunks[n] for n in numbers]

    def _positions(self, rows: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(flat buffer position of each (example, token) slot, mask of the real tokens) for a device-side buffer."""
        return padded_positions(self.device_offsets, self.device_lengths, rows, width, 0)

    def put(self, indices: np.ndarray, states: torch.Tensor) -> None:
        if self.device_rows is not None:
            rows = torch.as_tensor(np.asarray(indices, dtype=np.int64)).to(self.device)
            positions, mask = self._positions(rows, states.shape[1])
            self.device_rows[positions[mask]] = states.detach().float()[mask]
            self.filled[np.asarray(indices)] = True
            return
        values = states.detach().float().cpu().numpy()
        for row, index in enumerate(indices):
            start, length = self.offsets[index], self.lengths[index]
            self.rows[start : start + length] = values[row, :length]
            self.filled[index] = True

    def gather(self, indices: list[int], width: int | None = None, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The examples' states right-padded with zeros to `width` (default: the longest): (B, T, H).

        On the cache's device when it has one (`rows`: the indices already there), else a host tensor.
        """
        width = width or int(self.lengths[indices].max())
        if self.device_rows is not None:
            rows = rows if rows is not None else torch.as_tensor(np.asarray(indices, dtype=np.int64)).to(self.device)
            positions, mask = self._positions(rows, width)
            return torch.where(mask.unsqueeze(-1), self.device_rows[positions], 0.0)
        out = np.zeros((len(indices), width, self.rows.shape[1]), dtype=np.float32)
        for row, index in enumerate(indices):
            start, length = self.offsets[index], self.lengths[index]
            out[row, :length] = self.rows[start : start + length]
        return torch.from_numpy(out)

    def drop(self) -> None:
        self.rows = np.empty((0, 0), dtype=np.float32)
        self.device_rows = None
        if self.spill_file is not None:
            self.spill_file.unlink(missing_ok=True)


class FrozenFeatures:
    """The trainable part's inputs for a batch: cached outputs of the frozen part where it has one."""

    def __init__(self, model: MultiTaskModel, train_ids: dict[str, list[np.ndarray]], tokenizer: TextTokenizer, memory_bytes: int,
                 spill_dir: Path, rank: int = 0, multiple: int = 1) -> None:
        self.model = model
        self.train_ids = train_ids
        # The whole run's token ids live on the device; a batch is a gather there (see device_ids).
        self.packed = {stream: PackedIds(ids, tokenizer.pad_id, model.encoder.device, multiple, tokenizer.max_seq_length)
                       for stream, ids in train_ids.items()}
        self.memory_bytes = memory_bytes
        self.spill_dir = spill_dir
        self.rank = rank
        self.cut = NO_CUT
        self.token_caches: dict[str, TokenStateCache] = {}
        self.embeddings: dict[str, torch.Tensor] = {}

    @property
    def encoder(self):
        return self.model.encoder

    def set_cut(self, cut: Cut, texts: dict[str, list[str]], backend: str) -> None:
        """Use `cut` from now on; a different cut drops what was cached for the old one."""
        if cut == self.cut:
            return
        self.drop()
        self.cut = cut
        if cut.kind == "encoder":
            for task, task_texts in texts.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", TruncationWarning)  # counted once in the run's start event
                    vectors = self.encoder.encode(task_texts, batch_size=64, output="torch", show_progress=False, backend=backend)
                self.embeddings[task] = vectors.float().to(self.encoder.device)  # small: kept where the heads run
        elif cut.caches:
            hidden = self.encoder.hidden_size
            budget = self.memory_bytes
            for task, ids in self.train_ids.items():
                lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
                size = TokenStateCache.nbytes(lengths, hidden)
                spill = None
                if size > budget:
                    spill = self.spill_dir / f"{task}-{cut.kind}{cut.layer or ''}-rank{self.rank}.f32"
                else:
                    budget -= size
                # On a GPU a cache within the budget lives in device memory: batches are gathered there.
                device = self.encoder.device if self.encoder.device.type == "cuda" else None
                self.token_caches[task] = TokenStateCache(lengths, hidden, spill, device)

    def drop(self) -> None:
        for cache in self.token_caches.values():
            cache.drop()
        self.token_caches, self.embeddings, self.cut = {}, {}, NO_CUT

    def storage(self) -> dict[str, str]:
        """Where each task's cache lives (for the run's log)."""
        if self.cut.kind == "encoder":
            return {task: "memory" for task in self.embeddings}
        return {task: (str(c.spill_file) if c.spill_file else "device memory" if c.device_rows is not None else "memory")
                for task, c in self.token_caches.items()}

    @torch.no_grad()
    def _states_below(self, task: str, chunk: np.ndarray) -> torch.Tensor:
        batch = self.packed[task].batch(chunk)
        input_ids, mask = batch["input_ids"], batch["attention_mask"]
        with attention_backends():
            if self.cut.kind == "layer":
                return hidden_below(self.encoder.backbone, input_ids, mask, self.cut.layer)
            return self.encoder.backbone(input_ids=input_ids, attention_mask=mask)[0]

    def fill(self, task: str, indices: list[int]) -> None:
        """Compute the token states these examples still lack (whole chunks at a time)."""
        cache = self.token_caches.get(task)
        if cache is not None:
            for chunk in cache.missing_chunks(indices):
                cache.put(chunk, self._states_below(task, chunk))

    def batch(self, task: str, indices: list[int], rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """input_ids and attention_mask padded to the batch's length bucket, plus `cached` (the frozen part's output) under a cut.

        `rows`: `indices` already on the device (shared by a pair task's two streams); nothing here waits for the device.
        """
        device = self.encoder.device
        rows = rows if rows is not None else host_to_device(torch.as_tensor(np.asarray(indices, dtype=np.int64)), device)
        if self.cut.kind == "encoder":  # only the heads run: no token ids needed
            return {"cached": self.embeddings[task][rows]}
        inputs = self.packed[task].batch(indices, rows)
        if self.cut.caches:
            self.fill(task, indices)
            cache = self.token_caches[task]
            states = cache.gather(indices, inputs["input_ids"].shape[1], rows if cache.device_rows is not None else None)
            inputs["cached"] = states if cache.device_rows is not None else host_to_device(states, device)
        return inputs

    def embed(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sentence embeddings of a batch from `batch()`, running only what is above the cut."""
        if self.cut.kind == "encoder":
            return inputs["cached"]
        encoder, mask = self.encoder, inputs["attention_mask"]
        if self.cut.kind == "backbone":
            return encoder.embed_tokens(inputs["cached"], mask)
        if self.cut.kind == "layer":
            tokens = run_above(encoder.backbone, inputs["input_ids"], mask, inputs["cached"], self.cut.layer)
            return encoder.embed_tokens(tokens, mask)
        return encoder(inputs["input_ids"], mask)
