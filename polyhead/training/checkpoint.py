"""Resumable checkpoints: weights, optimizer, sampler and RNG state (the schedule follows the step).

A checkpoint is one directory written into a temp sibling and renamed into place, so a
crash while writing leaves the previous checkpoint intact. Weights are safetensors;
optimizer and RNG state are loaded with `torch.load(weights_only=True)`, which
refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from ..fileio import atomic_directory

WEIGHTS = "module.safetensors"
OPTIMIZER = "optimizer.pt"
STATE = "trainer_state.json"


@dataclass
class TrainerState:
    """Loop bookkeeping that a resumed run needs to continue exactly."""

    step: int = 0
    """Optimizer steps completed."""
    sampler: dict = field(default_factory=dict)
    """TaskBatchSampler.state_dict()."""
    best_metric: float | None = None
    """Best validation value of the early-stopping metric so far."""
    best_step: int | None = None
    """Step of the best checkpoint."""
    evals_without_improvement: int = 0
    """Consecutive evaluations that did not beat the best."""
    elapsed_s: float = 0.0
    """Training wall time before this checkpoint (excludes time lost to a crash)."""
    phase: int = 0
    """Index of the current schedule phase."""


def save_checkpoint(
    directory: Path,
    module: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: TrainerState,
    rng_states: list[dict],
) -> None:
    """Write everything atomically; `rng_states` holds one entry per process."""
    with atomic_directory(directory) as tmp:
        save_model(module, str(tmp / WEIGHTS))
        torch.save({"optimizer": optimizer.state_dict() if optimizer is not None else None}, tmp / OPTIMIZER)
        for rank, rng in enumerate(rng_states):
            torch.save(rng, tmp / f"rng-rank{rank}.pt")
        (tmp / STATE).write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(directory: Path, rank: int) -> None:
    path = directory / f"rng-rank{rank}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no RNG state for process {rank}; resume with the same number of processes")
    state = torch.load(path, weights_only=True)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(directory: Path, module: nn.Module) -> TrainerState:
    """Restore the weights in place; return the loop state (see `load_optimizer_state`)."""
    missing = [name for name in (WEIGHTS, OPTIMIZER, STATE) if not (directory / name).exists()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a complete checkpoint (missing {', '.join(missing)})")
    load_model(module, str(directory / WEIGHTS), strict=True, device=str(next(module.parameters()).device))
    return TrainerState(**json.loads((directory / STATE).read_text(encoding="utf-8")))


def load_optimizer_state(directory: Path, optimizer: torch.optim.Optimizer) -> None:
    saved = torch.load(directory / OPTIMIZER, weights_only=True)
    if saved["optimizer"] is not None:
        optimizer.load_state_dict(saved["optimizer"])


def read_trainer_state(directory: Path) -> TrainerState | None:
    path = directory / STATE
    return TrainerState(**json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None
