"""Weights written once while they do not change: a later save links the earlier file instead of rewriting it.

A frozen encoder's weights are the same at every checkpoint and every best-model copy of a run, and
writing them again is most of what such a save costs (about 0.25 s for all-MiniLM-L6-v2 on a 2-core
CPU, seconds for a large model). `LinkedWrites.reuse` links a file only if it is the very file this
object recorded (same device and inode) for the same tensors, unchanged since (`modes.tensors_key`: each
tensor's storage and in-place version counter). Files are never modified in place, so two names for
one file keep every guarantee two copies would against a crash (not against a disk corrupting it).
Where the file system has no hard links, the file is written as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

ALIASES_KEY = "polyhead_aliases"
"""safetensors metadata: a JSON map of names left out of the file -> the name that holds the same tensor (tied weights)."""


@dataclass
class WrittenFile:
    """What `LinkedWrites` knows of a file it recorded."""

    key: tuple
    inode: tuple[int, int]
    entry: dict | None = None
    """Whatever the writer noted beside it (a checkpoint's manifest entry: bytes and sha256)."""


class LinkedWrites:
    """The files one writer made, by slot ("backbone", "frozen"), for linking while their tensors are unchanged."""

    def __init__(self) -> None:
        self.written: dict[str, WrittenFile] = {}

    def reuse(self, slot: str, key: tuple, source: Path, target: Path) -> WrittenFile | None:
        """Link `source` as `target` when it is the file recorded for `slot` with this key; None: write it."""
        known = self.written.get(slot)
        if known is None or known.key != key:
            return None
        try:
            stat = source.stat()
            if (stat.st_dev, stat.st_ino) != known.inode:
                return None
            os.link(source, target)
        except OSError:
            return None
        return known

    def record(self, slot: str, key: tuple, path: Path, entry: dict | None = None) -> None:
        """`path` now holds the tensors of `key` (it keeps its inode when its directory is renamed)."""
        stat = path.stat()
        self.written[slot] = WrittenFile(key, (stat.st_dev, stat.st_ino), entry)


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors of `tensors`; names that share one tensor (tied weights) are stored once, the others as aliases."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    holders: dict[tuple, str] = {}
    for name, tensor in tensors.items():
        place = (tensor.device, tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()))
        if place in holders:
            aliases[name] = holders[place]
        else:
            holders[place] = name
            unique[name] = tensor.detach().cpu().contiguous()
    save_file(unique, str(path), metadata={ALIASES_KEY: json.dumps(aliases)})


def load_tensors(path: Path, device: str) -> dict[str, torch.Tensor]:
    """What `save_tensors` wrote, aliases included."""
    tensors = {}
    with safe_open(str(path), framework="pt", device=device) as handle:
        for name in handle.keys():
            tensors[name] = handle.get_tensor(name)
        aliases = json.loads((handle.metadata() or {}).get(ALIASES_KEY, "{}"))
    tensors.update({alias: tensors[kept] for alias, kept in aliases.items()})
    return tensors
