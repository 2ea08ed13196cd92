"""Frozen parts computed once: the right cut, exact split forward on every family, cached = uncached training."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec
from polyhead.training import load_config, train
from polyhead.training.freezing import FreezeConfig, frozen_names
from polyhead.training.frozen_cache import Cut, find_cut
from polyhead.training.layer_split import hidden_below, run_above
from polyhead.training.parts import model_parts
from tests.conftest import TINY_KINDS

from .conftest import small_config, write_config


@pytest.fixture(scope="module", params=TINY_KINDS)
def tiny_encoder(request, tiny_model_dir):
    return request.param, SentenceEncoder(tiny_model_dir(request.param), pooling="cls_pooler", device="cpu")


@pytest.mark.parametrize(
    "freeze, cut",
    [
        (FreezeConfig(), Cut("none")),
        (FreezeConfig(embeddings=True), Cut("none")),
        (FreezeConfig(layers=[0]), Cut("none")),  # layer 0 frozen but fed by trainable embeddings
        (FreezeConfig(lower=1), Cut("layer", 1)),
        (FreezeConfig(embeddings=True, layers=[0, 1]), Cut("backbone")),  # the cls_pooler still trains
        (FreezeConfig(backbone=True), Cut("backbone")),
        (FreezeConfig(backbone=True, pooler=True), Cut("encoder")),
        (FreezeConfig(lower=1, head="topic"), Cut("layer", 1)),
    ],
)
def test_the_cut_is_the_highest_point_below_which_everything_is_frozen(tiny_encoder, freeze, cut):
    _, encoder = tiny_encoder
    model = MultiTaskModel(encoder, [TaskSpec("topic", ["a", "b"])])
    parts = model_parts(model)
    assert find_cut(parts, frozen_names(parts, freeze)) == cut


def test_split_forward_equals_the_whole_backbone_on_every_family(tiny_encoder, rt_texts):
    kind, encoder = tiny_encoder
    batch = encoder.tokenize(rt_texts[:6])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        whole = encoder.backbone(input_ids=ids, attention_mask=mask)[0]
        below = hidden_below(encoder.backbone, ids, mask, 1)
        # Cached states come back padded with zeros, not with the real pad positions' values.
        below = below * mask[..., None]
        above = run_above(encoder.backbone, ids, mask, below, 1)
    real = mask.bool()
    assert torch.allclose(above[real], whole[real], atol=1e-5), kind
    assert len(list(encoder.backbone.parameters())) == len(dict(encoder.backbone.named_parameters())), "layer list restored"
    assert not torch.allclose(below[real], whole[real], atol=1e-2), "the lower piece stops below the top layer"


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / "last" / "module.safetensors"))


@pytest.mark.parametrize("freeze", [{"lower": 1}, {"backbone": True}], ids=["lower-layer", "whole-encoder"])
def test_cached_and_uncached_training_give_the_same_weights(tmp_path, tiny_bert_dir, freeze):
    runs = {}
    for name, cache in (("cached", True), ("uncached", False)):
        config = small_config(str(tiny_bert_dir), tmp_path / name, max_steps=10, eval_every=5,
                              mixed_precision="no", cache_frozen=cache, cache_memory_mb=0 if "lower" in freeze else 1024)
        config["freeze"] = freeze
        runs[name] = train(load_config(write_config(tmp_path / f"{name}.yaml", config)))
    cached, uncached = _weights(tmp_path / "cached"), _weights(tmp_path / "uncached")
    for key in cached:
        assert torch.allclose(cached[key], uncached[key], atol=1e-4, rtol=1e-4), key
    assert runs["cached"].validation_metrics == runs["uncached"].validation_metrics
    log = [json.loads(line) for line in (tmp_path / "cached" / "metrics.jsonl").read_text().splitlines()]
    cache_events = [r["frozen_cache"] for r in log if r.get("frozen_cache")]
    expected = "layer" if "lower" in freeze else "encoder"
    assert cache_events[0]["cut"] == expected
    if "lower" in freeze:  # cache_memory_mb=0: the states went to a file, removed at the end
        assert all(path.endswith(".f32") for path in cache_events[0]["storage"].values())
        assert not list((tmp_path / "cached" / "cache").glob("*.f32"))


def test_a_phase_that_unfreezes_drops_the_cache(tmp_path, tiny_bert_dir):
    config = small_config(str(tiny_bert_dir), tmp_path / "run", max_steps=None, eval_every=3, mixed_precision="no")
    config["training"].pop("max_steps")
    config["phases"] = [
        {"name": "heads", "steps": 3, "freeze": {"backbone": True, "pooler": True}},
        {"name": "top layer", "steps": 3, "freeze": {"lower": 1}},
        {"name": "all", "steps": 3},
    ]
    train(load_config(write_config(tmp_path / "run.yaml", config)))
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    cuts = [(r["phase"], r["frozen_cache"]["cut"]) for r in log if r.get("frozen_cache")]
    assert cuts == [(0, "encoder"), (1, "layer"), (2, "none")]
    # The backbone trained in the last phase: its weights moved although phase 0 cached them.
    start = SentenceEncoder(str(tiny_bert_dir), device="cpu").backbone.state_dict()
    final = load_file(str(tmp_path / "run" / "checkpoints" / "last" / "module.safetensors"))
    layer0 = "model.encoder.backbone.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(final[layer0], start["encoder.layer.0.attention.self.query.weight"])


def test_layers_below_lower_n_compute_the_same_after_training(tmp_path, tiny_model_dir, rt_texts):
    """`freeze: {lower: 1}` keeps what enters layer 1 unchanged on every family (embeddings included)."""
    from polyhead import load

    texts = rt_texts[:8]
    for kind in TINY_KINDS:
        directory = tiny_model_dir(kind)
        before = SentenceEncoder(directory, device="cpu")
        config = small_config(str(directory), tmp_path / kind, tasks=("sentiment",), max_steps=4, eval_every=4, mixed_precision="no")
        config["freeze"] = {"lower": 1}
        result = train(load_config(write_config(tmp_path / f"{kind}.yaml", config)))
        after = load(result.model_dir, device="cpu").encoder
        batch = before.tokenize(texts)
        with torch.no_grad():
            states = [hidden_below(e.backbone, batch["input_ids"], batch["attention_mask"], 1) for e in (before, after)]
            tops = [e.backbone(**batch)[0] for e in (before, after)]
        assert torch.equal(states[0], states[1]), kind
        assert not torch.allclose(tops[0], tops[1]), f"{kind}: the top layer should have trained"
