"""A training stream's token ids packed once on the training device, padded batches cut out there.

A run's token ids are small (a million tokens is 8 MB), so they move to the device once, as
one flat tensor with each example's offset and length. A batch is then an index gather on
the device: only the batch's example numbers cross from the host (a pinned, non-blocking
copy on a GPU), and the padded width comes from lengths the host already knows, so cutting
a batch never waits for the device. The result equals `TextTokenizer.pad` of the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..tokenization import padded_width


def host_to_device(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on `device`; on a GPU through pinned memory without blocking the host."""
    if device.type != "cuda":
        return values.to(device)
    return values.pin_memory().to(device, non_blocking=True)


class PackedIds:
    """One stream's token ids on the device: `batch(indices)` gives input_ids and attention_mask."""

    def __init__(self, ids: Sequence[np.ndarray], pad_id: int, device: torch.device, multiple: int = 1,
                 limit: int | None = None) -> None:
        if not len(ids):
            raise ValueError("cannot pack a stream without examples")
        self.lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        """Each example's token count, on the host: batch widths are known without asking the device."""
        offsets = np.zeros(len(ids), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=offsets[1:])
        flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in ids] + [np.array([pad_id], dtype=np.int64)])
        self.pad_position = int(flat.size - 1)
        """Where the flat tensor holds one pad id: every padded slot gathers from it."""
        self.device, self.multiple, self.limit = device, multiple, limit
        self.flat = host_to_device(torch.from_numpy(flat), device)
        self.offsets = host_to_device(torch.from_numpy(offsets), device)
        self.device_lengths = host_to_device(torch.from_numpy(self.lengths), device)

    def width(self, indices: Sequence[int]) -> int:
        """The padded width of a batch of these examples (its length bucket)."""
        return padded_width(int(self.lengths[np.asarray(indices)].max()), self.multiple, self.limit)

    def batch(self, indices: Sequence[int], rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """input_ids and attention_mask (int64) of these examples, right-padded to their bucket.

        `rows`: the same indices already on the device (one copy shared by the batch's streams).
        """
        rows = rows if rows is not None else host_to_device(torch.as_tensor(np.asarray(indices, dtype=np.int64)), self.device)
        gather, mask = padded_positions(self.offsets, self.device_lengths, rows, self.width(indices), self.pad_position)
        return {"input_ids": self.flat[gather], "attention_mask": mask.long()}


def padded_positions(offsets: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor, width: int,
                     fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each (example, token) slot of a padded batch lies in a flat buffer of examples laid end to end
    (`fill` for the padded slots), and the mask of the real tokens; all on the device, nothing waits."""
    steps = torch.arange(width, device=offsets.device)
    mask = steps.unsqueeze(0) < lengths[rows].unsqueeze(1)
    return torch.where(mask, offsets[rows].unsqueeze(1) + steps.unsqueeze(0), fill), mask
