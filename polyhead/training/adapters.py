"""LoRA adapters in the shared encoder (through `peft`), and merging them back for inference.

The adapters go into every linear layer of the transformer blocks, which are found from the
backbone's structure (`find_layer_list`), so any backbone family works without module names.
Training keeps the adapters separate (the original weights stay frozen); every saved model
has them merged into the weights, so it loads, serves and exports like any other model.
"""

from __future__ import annotations

import copy

from torch import nn

from ..errors import InputError
from .config import LoraConfig
from .parts import ModelParts, find_layer_list

ADAPTER_MARK = "lora_"


def adapter_targets(backbone: nn.Module) -> list[str]:
    """Names of the linear layers inside the transformer blocks."""
    path, layers = find_layer_list(backbone)
    return [f"{path}.{index}.{name}" for index, layer in enumerate(layers)
            for name, module in layer.named_modules() if isinstance(module, nn.Linear)]


def add_lora(backbone: nn.Module, config: LoraConfig) -> int:
    """Insert adapters in place; returns how many parameters they add."""
    import peft

    targets = adapter_targets(backbone)
    if not targets:
        raise InputError(f"{type(backbone).__name__} has no linear layers in its transformer blocks for adapters", field="model.lora")
    peft_config = peft.LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=targets)
    peft.inject_adapter_in_model(peft_config, backbone)
    return sum(p.numel() for name, p in backbone.named_parameters() if ADAPTER_MARK in name)


def has_adapters(module: nn.Module) -> bool:
    return any(ADAPTER_MARK in name for name, _ in module.named_parameters())


def adapter_freezing(parts: ModelParts, frozen: set[str]) -> set[str]:
    """With adapters, the backbone's own weights never train and the adapters always do."""
    backbone = set(parts.embeddings) | {name for layer in parts.layers for name in layer}
    adapters = {name for name in backbone if ADAPTER_MARK in name}
    if not adapters:
        return frozen
    return (frozen | backbone) - adapters


def merge_adapters(module: nn.Module) -> nn.Module:
    """Fold every adapter into its base layer and put the plain layer back (in place)."""
    from peft.tuners.lora import LoraLayer

    replacements = [(name, sub) for name, sub in module.named_modules() if isinstance(sub, LoraLayer)]
    for name, layer in replacements:
        layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, layer.get_base_layer())
    return module


def merged_copy(model: nn.Module) -> nn.Module:
    """The model with adapters merged, leaving `model` (still training) untouched."""
    return merge_adapters(copy.deepcopy(model)) if has_adapters(model) else model
