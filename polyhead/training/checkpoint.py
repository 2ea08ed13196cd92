"""Resumable checkpoints: weights, optimizer, sampler and RNG state (the schedule follows the step).

A run's `checkpoints/` directory holds step-named checkpoints and a `last` symlink:

    checkpoints/step-00000008/   complete: every file, then manifest.json (sizes, sha256)
    checkpoints/step-00000012/   the newest
    checkpoints/last -> step-00000012

Writing one (`CheckpointStore.save`) never touches a complete checkpoint: the files go into
a hidden temp directory, are fsynced, the manifest is written last, the directory is renamed
to its step name, and only then is `last` switched (a new symlink renamed over the old, one
atomic step). The previous checkpoint stays until the next one is complete, so at every
instant at least one complete, verifiable checkpoint exists. `CheckpointStore.latest` finds
the newest checkpoint whose files match its manifest, whatever state a crash left
(a corrupted newest one falls back to the previous with a warning), and removes the debris.

Weights are safetensors; optimizer and RNG state are loaded with
`torch.load(weights_only=True)`, which refuses anything but tensors and plain containers.
Frozen parameters go to a file of their own, which the next checkpoint links rather than writes
again while they stay unchanged (`polyhead.linked_weights`): a frozen encoder is written once a run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from ..fileio import fsync_directory, sha256_file
from ..fault import fault_point
from ..linked_weights import LinkedWrites, load_tensors, save_tensors
from ..modes import tensors_key
from .trainer_state import STATE, TrainerState, read_trainer_state
from .write_failures import WRITE_ERRORS, CheckpointError, tensor_bytes, write_failure_reason

logger = logging.getLogger("polyhead.training")

WEIGHTS = "module.safetensors"
FROZEN_WEIGHTS = "frozen.safetensors"
"""The parameters frozen when the checkpoint was written (absent when none were); the rest are in WEIGHTS."""
OPTIMIZER = "optimizer.pt"
MANIFEST = "manifest.json"
POINTER = "last"
REQUIRED = (WEIGHTS, OPTIMIZER, STATE)
KEEP = 2
"""Complete checkpoints kept: the newest and the one before it (the fallback)."""

_STEP_DIR = re.compile(r"^step-(\d+)(?:-(\d+))?$")
_DEBRIS = re.compile(r"^\.(step-\d+(?:-\d+)?|last)\.(tmp|old)-")


def start_over(run_dir: Path, main: bool) -> None:
    """`--resume` of a run stopped before its first checkpoint was complete: there is nothing to continue,
    so it starts again from step 0; the stopped attempt's metrics log goes, so the report shows one run."""
    if not main:
        return
    print(f"note: {run_dir} has no complete checkpoint (the run stopped before its first one was written); "
          "starting it again from the beginning", file=sys.stderr)
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)


class CheckpointStore:
    """The step-named checkpoints of one run and the `last` pointer to the newest."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.links = LinkedWrites()
        """The frozen-weights file of the newest checkpoint this store wrote, for linking while unchanged."""

    @property
    def pointer(self) -> Path:
        return self.root / POINTER

    def exists(self) -> bool:
        """True when anything that may hold a checkpoint is there (a run was started)."""
        return bool(self._candidates()) or self.pointer.is_symlink()

    # ------------------------------------------------------------------ writing
    def save(self, module: nn.Module, optimizer: torch.optim.Optimizer | None, state: TrainerState, rng_states: list[dict]) -> Path:
        """Write a complete checkpoint for `state.step`, point `last` at it, drop older ones."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._adopt_legacy_pointer()
        previous = self._pointed()
        name = self._free_name(state.step)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=self.root))
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
            fault_point("begin")
            frozen = self._save_weights(module, tmp, previous)
            fault_point("weights")
            torch.save({"optimizer": optimizer.state_dict() if optimizer is not None else None}, tmp / OPTIMIZER)
            fault_point("optimizer")
            for rank, rng in enumerate(rng_states):
                torch.save(rng, tmp / f"rng-rank{rank}.pt")
            fault_point("rng")
            (tmp / STATE).write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
            fault_point("state")
            files = _write_manifest(tmp, state.step, known=frozen[1] if frozen else None)
            fault_point("manifest")
            os.rename(tmp, self.root / name)
        except WRITE_ERRORS as error:
            failure = self._write_error(error, previous, tensor_bytes(module))  # before the partial files go
            shutil.rmtree(tmp, ignore_errors=True)
            raise failure from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_directory(self.root)
        if frozen is not None:
            self.links.record("frozen", frozen[0], self.root / name / FROZEN_WEIGHTS, files[FROZEN_WEIGHTS])
        fault_point("renamed")
        self._point_to(name)
        fault_point("pointer")
        self._prune(keep={name, previous})
        return self.root / name

    def _save_weights(self, module: nn.Module, directory: Path, previous: str | None) -> tuple[tuple, dict | None] | None:
        """The module's weights into `directory`: frozen parameters apart, linked from the previous checkpoint when
        unchanged. Returns (the frozen tensors' key, their manifest entry when linked), or None when nothing is frozen."""
        frozen = [(n, p) for n, p in module.named_parameters(remove_duplicate=False) if not p.requires_grad]
        if not frozen:
            save_model(module, str(directory / WEIGHTS))
            return None
        state, key, names = module.state_dict(), tensors_key(frozen), {n for n, _ in frozen}
        save_tensors({n: t for n, t in state.items() if n not in names}, directory / WEIGHTS)
        source = self.root / previous / FROZEN_WEIGHTS if previous else None
        linked = self.links.reuse("frozen", key, source, directory / FROZEN_WEIGHTS) if source else None
        if linked is None:
            save_tensors({n: state[n] for n in names}, directory / FROZEN_WEIGHTS)
        return key, linked.entry if linked else None

    def _write_error(self, error: Exception, previous: str | None, needed_bytes: int) -> CheckpointError:
        reason = write_failure_reason(error, self.root, needed_bytes)
        if previous is None:
            advice = (f"no checkpoint was written before this one: fix that, then polyhead train --resume {self.root.parent} "
                      "starts the run again from the beginning")
        else:
            advice = f"the previous checkpoint is intact: fix that, then continue with polyhead train --resume {self.root.parent}"
        return CheckpointError(f"could not write a checkpoint into {self.root} ({reason}); {advice}")

    def _free_name(self, step: int) -> str:
        """step-00000012, or step-00000012-1 when that step was already checkpointed."""
        name, suffix = f"step-{step:08d}", 0
        while (self.root / name).exists():
            suffix += 1
            name = f"step-{step:08d}-{suffix}"
        return name

    def _point_to(self, name: str) -> None:
        """Switch `last` to `name` in one rename: a reader sees the old or the new, never neither."""
        link = self.root / f".{POINTER}.tmp-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.symlink(name, link)
        fault_point("pointer-tmp")
        os.replace(link, self.pointer)
        fsync_directory(self.root)

    def _pointed(self) -> str | None:
        return os.readlink(self.pointer) if self.pointer.is_symlink() else None

    def _adopt_legacy_pointer(self) -> None:
        """A run from before step-named checkpoints has `last` as a real directory: give it a step name."""
        if self.pointer.is_dir() and not self.pointer.is_symlink():
            state = read_trainer_state(self.pointer)
            name = self._free_name(state.step if state else 0)
            os.rename(self.pointer, self.root / name)
            self._point_to(name)

    def _prune(self, keep: set[str | None]) -> None:
        """Remove every checkpoint but `keep`, and whatever interrupted writes left behind."""
        for path in self.root.iterdir():
            if path.name in keep or path.name == POINTER:
                continue
            if _STEP_DIR.match(path.name) or _DEBRIS.match(path.name):
                _remove(path)

    # ------------------------------------------------------------------ reading
    def resume_point(self, main: bool, wait_for_everyone: Callable[[], None]) -> Path | None:
        """The checkpoint every process resumes from: the main process finds it (and tidies up), the others follow `last`."""
        chosen = self.latest() if main else None
        wait_for_everyone()
        return chosen or (self.pointer.resolve() if self.pointer.exists() else None)

    def latest(self) -> Path | None:
        """The newest checkpoint that verifies; `last` is pointed at it and the rest removed.

        None when the run never completed a checkpoint (its debris is removed). Newer checkpoints that fail
        verification are reported and removed; CheckpointError when all of them fail.
        """
        candidates = self._candidates()
        if not candidates:
            if self.root.is_dir():
                self._prune(keep=set())  # only what interrupted first writes left
            return None
        problems: list[str] = []
        for path in candidates:
            problem = verify_checkpoint(path)
            if problem is None:
                return self._settle(path, problems)
            logger.warning("checkpoint %s is unusable (%s); falling back to an older one", path, problem)
            problems.append(f"{path.name}: {problem}")
        if problems:
            raise CheckpointError(
                f"{self.root} holds no usable checkpoint ({'; '.join(problems)}); start the run again without --resume "
                "in a new output_dir"
            )
        return None

    def _settle(self, chosen: Path, problems: list[str]) -> Path:
        if not _STEP_DIR.match(chosen.name):  # a legacy directory: give it a step name and a manifest
            state = read_trainer_state(chosen)
            name = self._free_name(state.step if state else 0)
            _write_manifest(chosen, state.step if state else 0)
            os.rename(chosen, self.root / name)
            chosen = self.root / name
        if self._pointed() != chosen.name:
            if self.pointer.is_dir() and not self.pointer.is_symlink():
                _remove(self.pointer)  # a legacy directory that failed verification
            self._point_to(chosen.name)
        older = [p.name for p in self._candidates() if _STEP_DIR.match(p.name) and _order(p) < _order(chosen)]
        self._prune(keep={chosen.name, *older[:1]})
        return chosen

    def _candidates(self) -> list[Path]:
        """Step directories newest first, then legacy ones (a real `last`, `.last.old-*`)."""
        if not self.root.is_dir():
            return []
        steps = sorted((p for p in self.root.iterdir() if _STEP_DIR.match(p.name) and p.is_dir()), key=_order, reverse=True)
        legacy = [p for p in self.root.iterdir() if p.name.startswith(f".{POINTER}.old-") and p.is_dir()]
        if self.pointer.is_dir() and not self.pointer.is_symlink():
            legacy.insert(0, self.pointer)
        return steps + legacy


def _order(path: Path) -> tuple[int, int]:
    match = _STEP_DIR.match(path.name)
    assert match is not None
    return int(match.group(1)), int(match.group(2) or 0)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_manifest(directory: Path, step: int, known: dict | None = None) -> dict:
    """fsync every file, then record its size and hash: a checkpoint is complete once this exists.

    `known`: the entry of the frozen-weights file when it was linked from a checkpoint that recorded it (not hashed again)."""
    files = {}
    for path in sorted(directory.iterdir()):
        if path.name == MANIFEST or not path.is_file():
            continue
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        reuse = known is not None and path.name == FROZEN_WEIGHTS and path.stat().st_size == known["bytes"]
        files[path.name] = dict(known) if reuse else {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    manifest = directory / MANIFEST
    with open(manifest, "w", encoding="utf-8") as handle:
        json.dump({"step": step, "files": files}, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    fsync_directory(directory)
    return files


def verify_checkpoint(directory: Path) -> str | None:
    """None when `directory` is a complete checkpoint, else what is wrong with it.

    A directory with a manifest is checked file by file (size, then sha256); one without
    (written before manifests existed) only for its files and a readable trainer state.
    """
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        if _STEP_DIR.match(directory.name):
            return "no manifest: the write was interrupted"
        missing = [name for name in REQUIRED if not (directory / name).exists()]
        if missing:
            return f"missing {', '.join(missing)}"
        return None if read_trainer_state(directory) is not None else "unreadable trainer state"
    try:
        files = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        return "unreadable manifest"
    for name in REQUIRED:
        if name not in files:
            return f"the manifest lacks {name}"
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            return f"missing {name}"
        size = path.stat().st_size
        if size != expected["bytes"]:
            return f"{name} has {size} bytes, the manifest says {expected['bytes']}"
        if sha256_file(path) != expected["sha256"]:
            return f"{name} does not match its sha256 in the manifest"
    return None


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
    missing = [name for name in REQUIRED if not (directory / name).exists()]
    if missing:
        raise CheckpointError(f"{directory} is not a complete checkpoint (missing {', '.join(missing)})")
    device = str(next(module.parameters()).device)
    try:
        if (directory / FROZEN_WEIGHTS).exists():
            module.load_state_dict({**load_tensors(directory / WEIGHTS, device), **load_tensors(directory / FROZEN_WEIGHTS, device)})
        else:
            load_model(module, str(directory / WEIGHTS), strict=True, device=device)
    except Exception as error:  # noqa: BLE001 - safetensors raises its own types; one line for the user
        raise CheckpointError(f"{directory / WEIGHTS} cannot be loaded ({error}); remove {directory} to resume from the checkpoint before it") from None
    return TrainerState(**json.loads((directory / STATE).read_text(encoding="utf-8")))


def load_optimizer_state(directory: Path, optimizer: torch.optim.Optimizer) -> None:
    try:
        saved = torch.load(directory / OPTIMIZER, weights_only=True)
    except Exception as error:  # noqa: BLE001 - a corrupted zip raises from torch's C++ reader
        raise CheckpointError(f"{directory / OPTIMIZER} cannot be read ({str(error).splitlines()[0]}); remove {directory} to resume from the checkpoint before it") from None
    if saved["optimizer"] is not None:
        optimizer.load_state_dict(saved["optimizer"])


def checkpoint_step_text(directory: Path) -> str:
    """The step of the checkpoint in `directory`, for messages ("none yet" without one)."""
    state = read_trainer_state(directory)
    return str(state.step) if state else "none yet"


def save_model_copy(model, directory: Path, run_dir: Path) -> None:
    """Save a model of the run; a failed write is one line and leaves the previous copy in place."""
    had_copy = directory.exists()
    try:
        model.save(directory)
    except WRITE_ERRORS as error:
        reason = write_failure_reason(error, directory, tensor_bytes(model))
        kept = "the previous copy is intact" if had_copy else "no earlier copy was written"
        if CheckpointStore(run_dir / "checkpoints").pointer.exists():
            advice = f"the last checkpoint is kept: fix that, then continue with polyhead train --resume {run_dir}"
        else:
            advice = f"no checkpoint was written yet: fix that, then polyhead train --resume {run_dir} starts the run again from the beginning"
        raise CheckpointError(f"could not write the model into {directory} ({reason}); {kept} and {advice}") from None
