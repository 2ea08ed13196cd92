"""Join a Ray cluster, or start a local one for the job and stop it afterwards."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from .require import require_ray


@contextlib.contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None) -> Iterator[dict]:
    """Connected to Ray for the block; yields the cluster's total resources.

    An already connected session (a notebook, a test) is used as it is and left running.
    `address` joins a running cluster (`ray start --head` or a managed one; "auto" finds a
    local one); without it a local cluster of `num_cpus` (default: all) is started and
    stopped on the way out.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray.cluster_resources()
        return
    options: dict = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": True}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=num_cpus, **options)
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
