"""LoRA adapters in the shared encoder (through `peft`), and merging them back for inference.

The adapters go into every linear layer of the transformer blocks, which are found from the
backbone's structure (`find_layer_list`), so any backbone family works without module names.
Training keeps the adapters separate (the original weights stay frozen); every saved model
has these shared adapters merged into the weights, so it loads, serves and exports like any
other model. Per-task adapters (`polyhead.task_adapters`) are saved beside the encoder instead.
"""

from __future__ import annotations

import copy

from torch import nn

from ..errors import InputError
from .config import LoraConfig
from ..task_adapters import ADAPTER_MARK, inject_lora, unload_adapters
from .parts import ModelParts



def add_lora(backbone: nn.Module, config: LoraConfig, name: str = "default") -> int:
    """Insert adapters in place; returns how many parameters they add."""
    try:
        return inject_lora(backbone, config.rank, config.alpha, config.dropout, name)
    except ValueError as error:
        raise InputError(str(error), field="model.lora") from None


def has_adapters(module: nn.Module) -> bool:
    return any(ADAPTER_MARK in name for name, _ in module.named_parameters())


def adapter_freezing(parts: ModelParts, frozen: set[str]) -> set[str]:
    """With adapters, the backbone's own weights never train and the adapters always do."""
    backbone = set(parts.embeddings) | {name for layer in parts.layers for name in layer}
    adapters = {name for name in backbone if ADAPTER_MARK in name}
    if not adapters:
        return frozen
    return (frozen | backbone) - adapters


def merged_copy(model: nn.Module) -> nn.Module:
    """The model with its shared adapters (model.lora) merged, leaving `model` (still training) untouched.

    Per-task adapters (protect.strategy adapter) stay separate: a model saves them beside the encoder.
    """
    if not has_adapters(model) or getattr(model, "adapter_settings", None):
        return model
    return unload_adapters(copy.deepcopy(model), merge=True)
