"""Find a backbone's parts (embeddings, transformer layers, the rest) from its structure.

No hard-coded attribute paths: the transformer layers are the longest `nn.ModuleList`
whose children all share one class (BERT's encoder.layer, DistilBERT's
transformer.layer, RoBERTa, MPNet, ...). Everything else in the backbone belongs to the
embeddings side (lowest) unless it is the backbone's own unused pooler.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..layer_list import find_layer_list

__all__ = ["ModelParts", "find_layer_list", "model_parts"]


@dataclass
class ModelParts:
    """Parameter names of a MultiTaskModel-like module, grouped by part."""

    embeddings: list[str]
    """Backbone parameters outside the transformer layers (token/position embeddings, shared biases)."""
    layers: list[list[str]]
    """Per transformer layer, bottom (0) to top."""
    backbone_pooler: list[str]
    """The backbone's own pooler (never used in the forward pass)."""
    pooler: list[str]
    """polyhead's pooling parameters (the cls_pooler dense layer)."""
    heads: dict[str, list[str]]
    """Per task head."""
    other: list[str]
    """Anything else (e.g. learned loss weights)."""

    @property
    def num_layers(self) -> int:
        return len(self.layers)


def model_parts(module: nn.Module, encoder_prefix: str = "encoder.", heads_prefix: str = "heads.") -> ModelParts:
    """Group every parameter name of `module` (which holds a SentenceEncoder and heads)."""
    encoder = _resolve(module, encoder_prefix.rstrip("."))
    layer_path, layer_list = find_layer_list(encoder.backbone)
    backbone_prefix = f"{encoder_prefix}backbone."
    layer_prefix = f"{backbone_prefix}{layer_path}."
    parts = ModelParts([], [[] for _ in range(len(layer_list))], [], [], {}, [])
    for name, _ in module.named_parameters():
        if name.startswith(layer_prefix):
            index = int(name[len(layer_prefix):].split(".", 1)[0])
            parts.layers[index].append(name)
        elif name.startswith(f"{backbone_prefix}pooler."):
            parts.backbone_pooler.append(name)
        elif name.startswith(backbone_prefix):
            parts.embeddings.append(name)
        elif name.startswith(f"{encoder_prefix}pooling."):
            parts.pooler.append(name)
        elif name.startswith(heads_prefix):
            task = name[len(heads_prefix):].split(".", 1)[0]
            parts.heads.setdefault(task, []).append(name)
        else:
            parts.other.append(name)
    return parts


def _resolve(module: nn.Module, dotted: str) -> nn.Module:
    for part in dotted.split(".") if dotted else []:
        module = getattr(module, part)
    return module
