"""Ray is optional: one line that says how to install it, instead of an ImportError traceback."""

from __future__ import annotations

from types import ModuleType

from ..errors import MissingPackageError

INSTALL_HINT = "pip install 'polyhead[ray]'"


class RayMissingError(MissingPackageError):
    """Ray (with Ray Data) is not installed; the message is the fix."""

    def __init__(self, what: str) -> None:
        self.requirement = "ray[data]"
        ImportError.__init__(self, f"{what} needs Ray, which is not installed. Fix: {INSTALL_HINT}")


def require_ray(what: str = "the Ray engine") -> ModuleType:
    """The `ray` module with Ray Data importable, or RayMissingError naming `what` needs it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra installs it; a bare `ray` lacks it
    except ImportError:
        raise RayMissingError(what) from None
    return ray
