"""Kinds of task: each one registered piece (targets, head size, loss, metrics, answer, plot).

    from polyhead.tasks import get_kind
    kind = get_kind("regression")
"""

from . import classification, contrastive, multilabel, pairs, regression  # noqa: F401  (registers the built-in kinds)
from .base import KINDS, TargetColumns, TaskKind, Where, check_loss, get_kind, register_kind, summary_tables

KIND_NAMES = tuple(KINDS)

__all__ = ["KINDS", "KIND_NAMES", "TargetColumns", "TaskKind", "Where", "check_loss", "get_kind", "register_kind", "summary_tables"]
