"""Why a write of weights failed, in one phrase a user can act on: above all, a full device.

torch's and safetensors' writers often drop the OS error's number (torch reports a full disk only
as `inline_container.cc ... unexpected pos`), so the cause is read from the whole exception chain
and from the free space left where the write went.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from safetensors import SafetensorError
from torch import nn

from ..errors import InputError


class CheckpointError(InputError):
    """A checkpoint cannot be written or none can be read; the message says what to do."""


WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)
"""What a failed write raises: torch and safetensors wrap the OS error."""


FULL_SIGNS = ("No space left", "StorageFull", "Disk quota", "file write failed")
"""How libraries that drop the OS error's number word a full disk."""

NEARLY_FULL_BYTES = 1 << 20
"""Free space below which a failed write is put down to a full device: torch's writer reports one
only as `inline_container.cc ... unexpected pos` or `iostream error`, without the OS error."""


def write_failure_reason(error: BaseException, directory: Path, needed_bytes: int = 0) -> str:
    """One phrase for a failed write, whichever library raised it, with the free space left.

    "the device is full" whenever free space is the cause: an ENOSPC/EDQUOT or its wording anywhere
    in the exception chain, or less space left than the write needed (`needed_bytes`, when known) or
    than NEARLY_FULL_BYTES. Call it before removing what the failed write left, so that the space
    the write used up still counts as used.
    """
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    existing = next((p for p in (directory, *directory.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(existing).free
    full = _names_a_full_disk(error) or free < max(NEARLY_FULL_BYTES, needed_bytes)
    return f"{'the device is full' if full else text}; {free / 2**20:.0f} MiB free there"


def _names_a_full_disk(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(sign in str(current) for sign in FULL_SIGNS):
            return True
        current = current.__cause__ or current.__context__
    return False


def tensor_bytes(module: nn.Module) -> int:
    """Bytes of a module's tensors: about what writing its weights needs on disk."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())
