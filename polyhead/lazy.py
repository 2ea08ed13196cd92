"""Package attributes imported on first use (PEP 562), so `import polyhead` stays light.

The command line checks its arguments, config and files before PyTorch and transformers
are imported; packages whose `__init__` re-exports heavy classes use `lazy_exports`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` that imports `exports[name]` (a submodule) the first time."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    return __getattr__
