"""What is frozen: a config of parts, applied before the optimizer is built.

Frozen parameters get requires_grad=False; frozen modules are kept in eval mode while
training (dropout off, batch statistics fixed), so a frozen part is bit-for-bit unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:  # a config is read before torch is imported
    from torch import nn

    from .parts import ModelParts


@dataclass
class FreezeConfig:
    """Parts that do not train; any combination."""

    all: bool = False
    """Nothing trains: the model is evaluated as it is."""
    backbone: bool = False
    """The whole transformer backbone (embeddings and every layer)."""
    embeddings: bool = False
    """The backbone's embeddings (and other parameters outside its layers)."""
    layers: list[int] = field(default_factory=list)
    """These transformer layers, 0 = lowest; negative indices count from the top."""
    lower: int = 0
    """Everything below layer N: the embeddings, every backbone parameter outside the layers that they use
    (e.g. MPNet's shared relative attention bias) and the lowest N layers, so their outputs stay exactly what they were."""
    pooler: bool = False
    """The cls_pooler dense layer."""
    heads: list[str] = field(default_factory=list)
    """These tasks' heads."""
    head: str | None = None
    """One task's head (shorthand for heads: [NAME])."""

    def is_empty(self) -> bool:
        return not (self.all or self.backbone or self.embeddings or self.layers or self.lower or self.pooler or self.heads or self.head)


def frozen_names(parts: ModelParts, freeze: FreezeConfig, where: str = "freeze") -> set[str]:
    """Parameter names the config freezes; unknown heads or layers are InputErrors."""
    names: set[str] = set(parts.backbone_pooler)  # never used, never trained
    if freeze.all:
        return names | set(parts.embeddings) | {n for layer in parts.layers for n in layer} | set(parts.pooler) | {
            n for head in parts.heads.values() for n in head} | set(parts.other)
    count = parts.num_layers
    if freeze.backbone or freeze.embeddings:
        names |= set(parts.embeddings)
    layer_indices = set(range(count)) if freeze.backbone else set()
    if not 0 <= freeze.lower <= count:
        raise InputError(f"lower must be between 0 and {count} (the backbone has {count} layers)", field=f"{where}.lower")
    layer_indices |= set(range(freeze.lower))
    if freeze.lower:
        names |= set(parts.embeddings)
    for index in freeze.layers:
        if not -count <= index < count:
            raise InputError(f"layer {index} does not exist; the backbone has layers 0..{count - 1}", field=f"{where}.layers")
        layer_indices.add(index % count)
    for index in layer_indices:
        names |= set(parts.layers[index])
    if freeze.pooler:
        names |= set(parts.pooler)
    for task in [*freeze.heads, *([freeze.head] if freeze.head else [])]:
        if task not in parts.heads:
            raise InputError(f"no task {task!r}; tasks are {', '.join(parts.heads)}", field=f"{where}.heads")
        names |= set(parts.heads[task])
    return names


def apply_freezing(module: nn.Module, frozen: set[str]) -> tuple[int, int]:
    """Set requires_grad from `frozen`; returns (trainable, total) parameter counts."""
    trainable = total = 0
    for name, param in module.named_parameters():
        param.requires_grad_(name not in frozen)
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return trainable, total


def frozen_modules(module: nn.Module, frozen: set[str]) -> list[nn.Module]:
    """The outermost modules all of whose parameters are frozen (kept in eval mode).

    Parameter-free modules (dropout) follow their parent: a dropout inside a frozen
    layer is switched off, one inside a training layer is not. Only the outermost are
    listed, since `eval()` reaches their children.
    """
    result, kept = [], []
    for name, sub in module.named_modules():  # parents come before their children
        if any(name.startswith(f"{outer}.") for outer in kept if outer) or (kept and kept[0] == ""):
            continue
        params = [f"{name}.{p}" if name else p for p, _ in sub.named_parameters()]
        if params and all(p in frozen for p in params):
            result.append(sub)
            kept.append(name)
    return result


def set_train_mode(module: nn.Module, frozen_parts: list[nn.Module]) -> None:
    """module.train(), then eval() on frozen parts so their dropout/batch stats stay off."""
    module.train()
    for part in frozen_parts:
        part.eval()


class TrainModes:
    """A phase's train/eval flags (the module training, its frozen parts in eval), set once and put back only where
    something changed one.

    Calling `set_train_mode` every step walked the whole model through `train()`, which transformers
    overrides per pretrained submodule: about 4.5 ms a step on a 2-core CPU, more than a frozen
    encoder's whole heads-only step. Checking the recorded flags costs microseconds.
    """

    def __init__(self, module: nn.Module, frozen_parts: list[nn.Module]) -> None:
        set_train_mode(module, frozen_parts)
        self.flags = [(sub, sub.training) for sub in module.modules()]

    def ensure(self) -> None:
        """Every flag as the phase set it (a plain attribute check per submodule when nothing changed)."""
        if any(sub.training != flag for sub, flag in self.flags):
            for sub, flag in self.flags:
                sub.training = flag
