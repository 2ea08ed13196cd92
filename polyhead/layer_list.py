"""A backbone's transformer blocks, found from its structure (no attribute names): freezing, layer-wise rates, adapters."""

from __future__ import annotations

from torch import nn


def find_layer_list(backbone: nn.Module) -> tuple[str, nn.ModuleList]:
    """The backbone's transformer block list: the longest homogeneous ModuleList (BERT's encoder.layer,
    DistilBERT's transformer.layer, RoBERTa, MPNet, ...)."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in backbone.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            kinds = {type(child) for child in module}
            if len(kinds) == 1 and (best is None or len(module) > len(best[1])):
                best = (name, module)
    if best is None:
        raise ValueError(f"cannot find the transformer layers of {type(backbone).__name__}")
    return best
