"""Per-task LoRA adapters in one shared encoder: a task added to a trained model can get its own adapter.

Old tasks keep running on the unchanged encoder (adapters off), each adapted task runs with its
own adapter on; `MultiTaskModel` groups a request's tasks by adapter, so each group costs one
encoder pass. A saved model keeps the encoder's weights as they are and the adapters beside them
(`adapters.safetensors`, settings in `polyhead_model.json`), so its old tasks load bit-for-bit.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path

from torch import nn

ADAPTERS_WEIGHTS = "adapters.safetensors"
ADAPTER_MARK = "lora_"


def adapter_targets(backbone: nn.Module) -> list[str]:
    """Names of the linear layers inside the transformer blocks (found from the structure, any backbone family)."""
    from .layer_list import find_layer_list

    path, layers = find_layer_list(backbone)
    return [f"{path}.{index}.{name}" for index, layer in enumerate(layers)
            for name, module in layer.named_modules() if isinstance(module, nn.Linear)]


def inject_lora(backbone: nn.Module, rank: int, alpha: float, dropout: float, name: str = "default") -> int:
    """Insert a LoRA adapter called `name` in place (beside any others); returns how many parameters it adds."""
    import peft

    targets = adapter_targets(backbone)
    if not targets:
        raise ValueError(f"{type(backbone).__name__} has no linear layers in its transformer blocks for adapters")
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
    peft.inject_adapter_in_model(config, backbone, adapter_name=name)
    return sum(p.numel() for key, p in backbone.named_parameters() if ADAPTER_MARK in key and f".{name}." in key)


def _tuner_layers(module: nn.Module) -> list:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in module.modules() if isinstance(m, BaseTunerLayer)]


def adapters_off(backbone: nn.Module) -> None:
    """The backbone as the shared encoder by default (every adapter off); `use_adapter` turns one on for its task.

    peft leaves a freshly inserted or loaded adapter on: without this, `model.encoder` (embeddings,
    the `lee` benchmark, /v1/embeddings) would answer with the last adapter's view.
    """
    trainable = {p: p.requires_grad for p in backbone.parameters()}
    for layer in _tuner_layers(backbone):
        layer.enable_adapters(False)
    for parameter, flag in trainable.items():
        parameter.requires_grad_(flag)


@contextlib.contextmanager
def use_adapter(backbone: nn.Module, name: str | None) -> Iterator[None]:
    """Run the backbone with adapter `name` on, or with every adapter off (None); restored afterwards.

    peft's switches also change `requires_grad`; that is put back too, so switching for an
    evaluation in the middle of training leaves the trainable adapter trainable.
    """
    layers = _tuner_layers(backbone)
    if not layers:
        yield
        return
    trainable = {p: p.requires_grad for p in backbone.parameters()}
    previous = [(layer.disable_adapters, list(layer.active_adapters)) for layer in layers]
    for layer in layers:
        if name is None:
            layer.enable_adapters(False)
        else:
            layer.enable_adapters(True)
            layer.set_adapter(name)
    try:
        yield
    finally:
        for layer, (disabled, active) in zip(layers, previous):
            layer.enable_adapters(True)
            layer.set_adapter(active)
            if disabled:
                layer.enable_adapters(False)
        for parameter, flag in trainable.items():
            parameter.requires_grad_(flag)


def unload_adapters(module: nn.Module, merge: bool) -> nn.Module:
    """Put every adapted layer's base layer back in place, with the adapters folded in (`merge`) or dropped."""
    from peft.tuners.lora import LoraLayer

    replacements = [(name, sub) for name, sub in module.named_modules() if isinstance(sub, LoraLayer)]
    for name, layer in replacements:
        if merge:
            layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, layer.get_base_layer())
    return module


def plain_copy(backbone: nn.Module, adapter: str | None) -> nn.Module:
    """A copy of the backbone as plain layers: adapter `adapter` merged into the weights, or none (None).

    For inference: a plain backbone gets every fast path (bf16 twin, ONNX) and no adapter products.
    """
    copied = copy.deepcopy(backbone)
    if adapter is not None:
        for layer in _tuner_layers(copied):
            layer.enable_adapters(True)
            layer.set_adapter(adapter)
    return unload_adapters(copied, merge=adapter is not None)


def without_adapters(backbone: nn.Module) -> nn.Module:
    """A copy of the backbone as it is without its adapters (to save the shared weights unchanged)."""
    return unload_adapters(copy.deepcopy(backbone), merge=False)


def adapter_weights(backbone: nn.Module) -> dict:
    return {key: value.detach().cpu().contiguous() for key, value in backbone.state_dict().items() if ADAPTER_MARK in key}


def load_adapters(backbone: nn.Module, settings: dict[str, dict], path: Path, device) -> None:
    """Insert the saved adapters and load their weights; every saved weight must find its place."""
    from safetensors.torch import load_file

    for name, setting in settings.items():
        inject_lora(backbone, int(setting["rank"]), float(setting["alpha"]), float(setting.get("dropout", 0.0)), name)
    weights = load_file(str(path / ADAPTERS_WEIGHTS), device=str(device))
    missing, unexpected = backbone.load_state_dict(weights, strict=False)
    absent = [key for key in missing if ADAPTER_MARK in key]
    if unexpected or absent:
        raise ValueError(f"{path / ADAPTERS_WEIGHTS} does not match the adapters in polyhead_model.json "
                         f"(unexpected {unexpected[:3]}, missing {absent[:3]})")
    adapters_off(backbone)
