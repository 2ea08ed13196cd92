"""Parameter groups get the learning rates the layer-wise formula gives; no decay on biases/norms."""

from __future__ import annotations

import pytest

from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec
from polyhead.training.optim import LearningRates, parameter_groups
from polyhead.training.parts import model_parts


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    encoder = SentenceEncoder(tiny_model_dir("bert"), pooling="cls_pooler", device="cpu")
    return MultiTaskModel(encoder, [TaskSpec("topic", ["a", "b", "c"])])


def test_layer_wise_learning_rates(model):
    rates = LearningRates(backbone=1e-4, pooler=2e-4, heads=5e-3, layer_decay=0.5)
    groups = {g["name"]: g for g in parameter_groups(model, model_parts(model), rates, weight_decay=0.01)}
    # L = 2 layers: top layer (l=2) gets 1e-4, layer l=1 gets 1e-4 * 0.5, embeddings 1e-4 * 0.5^2
    assert groups["layer.1"]["lr"] == pytest.approx(1e-4)
    assert groups["layer.0"]["lr"] == pytest.approx(5e-5)
    assert groups["embeddings"]["lr"] == pytest.approx(2.5e-5)
    assert groups["pooler"]["lr"] == pytest.approx(2e-4)
    assert groups["head.topic"]["lr"] == pytest.approx(5e-3)
    assert groups["layer.1.no_decay"]["lr"] == pytest.approx(1e-4)


def test_no_weight_decay_on_biases_and_layer_norms(model):
    groups = parameter_groups(model, model_parts(model), LearningRates(1e-4, 1e-4, 1e-3), weight_decay=0.01)
    for group in groups:
        for name in group["param_names"]:
            exempt = name.endswith("bias") or "LayerNorm" in name
            assert (group["weight_decay"] == 0.0) == exempt, name


def test_frozen_parameters_are_left_out(model):
    for p in model.encoder.backbone.parameters():
        p.requires_grad_(False)
    try:
        groups = parameter_groups(model, model_parts(model), LearningRates(1e-4, 1e-4, 1e-3), weight_decay=0.01)
        names = {n for g in groups for n in g["param_names"]}
        assert names and not any(n.startswith("encoder.backbone.") for n in names)
    finally:
        for name, p in model.encoder.backbone.named_parameters():
            p.requires_grad_(not name.startswith("pooler."))


def test_after_a_fused_step_the_weights_no_longer_look_unchanged():
    """The fused AdamW kernel leaves version counters alone; polyhead's optimizer bumps them after each step."""
    import torch

    from polyhead.modes import weights_key
    from polyhead.training.optim import build_optimizer

    layer = torch.nn.Linear(4, 2)
    optimizer = build_optimizer([{"params": list(layer.parameters()), "lr": 0.1}])
    assert optimizer.defaults["fused"], "the CPU uses the fused kernel"
    before = weights_key(layer)
    layer(torch.ones(3, 4)).sum().backward()
    optimizer.step()
    assert weights_key(layer) != before
