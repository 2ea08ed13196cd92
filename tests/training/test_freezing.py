"""Each freezing option freezes exactly what it names, on BERT, DistilBERT, RoBERTa and MPNet."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec
from polyhead.errors import InputError
from polyhead.training import load_config, train
from polyhead.training.freezing import FreezeConfig, apply_freezing, frozen_modules, frozen_names, set_train_mode
from polyhead.training.parts import model_parts
from tests.conftest import TINY_KINDS

from .conftest import small_config, write_config


@pytest.fixture(scope="module", params=TINY_KINDS)
def tiny_model(request, tiny_model_dir):
    encoder = SentenceEncoder(tiny_model_dir(request.param), pooling="cls_pooler", device="cpu")
    return request.param, MultiTaskModel(encoder, [TaskSpec("topic", ["a", "b", "c"]), TaskSpec("sentiment", ["pos", "neg"])])


def _names(model, freeze: FreezeConfig) -> set[str]:
    return frozen_names(model_parts(model), freeze) - set(model_parts(model).backbone_pooler)


def test_layers_found_from_the_model(tiny_model):
    kind, model = tiny_model
    parts = model_parts(model)
    assert parts.num_layers == 2
    assert all(len(layer) > 4 for layer in parts.layers)
    assert any("word_embeddings" in n for n in parts.embeddings), kind
    assert parts.pooler == ["encoder.pooling.dense.weight", "encoder.pooling.dense.bias"]
    assert set(parts.heads) == {"topic", "sentiment"}


def test_each_option_freezes_exactly_its_part(tiny_model):
    kind, model = tiny_model
    parts = model_parts(model)
    everything = {n for n, _ in model.named_parameters()} - set(parts.backbone_pooler)
    assert _names(model, FreezeConfig(embeddings=True)) == set(parts.embeddings)
    assert _names(model, FreezeConfig(lower=1)) == set(parts.embeddings) | set(parts.layers[0])
    assert _names(model, FreezeConfig(layers=[-1])) == set(parts.layers[1])
    assert _names(model, FreezeConfig(backbone=True)) == set(parts.embeddings) | set(parts.layers[0]) | set(parts.layers[1])
    assert _names(model, FreezeConfig(pooler=True)) == set(parts.pooler)
    assert _names(model, FreezeConfig(head="topic")) == {n for n in everything if n.startswith("heads.topic.")}
    assert _names(model, FreezeConfig(all=True)) == everything
    assert _names(model, FreezeConfig()) == set()
    layer_word = {"distilbert": "transformer.layer.0."}.get(kind, "encoder.layer.0.")
    assert all(layer_word in n for n in parts.layers[0])


def test_unknown_layer_or_head_is_a_clear_error(tiny_model):
    _, model = tiny_model
    with pytest.raises(InputError, match="layer 5 does not exist"):
        frozen_names(model_parts(model), FreezeConfig(layers=[5]))
    with pytest.raises(InputError, match="no task 'nope'"):
        frozen_names(model_parts(model), FreezeConfig(heads=["nope"]))


def test_frozen_modules_stay_in_eval_mode(tiny_model):
    _, model = tiny_model
    frozen = frozen_names(model_parts(model), FreezeConfig(lower=1))
    trainable, total = apply_freezing(model, frozen)
    assert 0 < trainable < total
    parts = frozen_modules(model, frozen)
    set_train_mode(model, parts)
    layer0_dropouts = [m for p in parts for m in p.modules() if isinstance(m, torch.nn.Dropout)]
    assert layer0_dropouts and not any(m.training for m in layer0_dropouts)
    assert model.heads["topic"].training
    apply_freezing(model, set())


def test_a_phases_modes_are_put_back_after_anything_changed_them(tiny_model):
    from polyhead.training.freezing import TrainModes

    _, model = tiny_model
    frozen = frozen_names(model_parts(model), FreezeConfig(lower=1))
    apply_freezing(model, frozen)
    modes = TrainModes(model, frozen_modules(model, frozen))
    expected = [(m, m.training) for m in model.modules()]
    assert any(flag for _, flag in expected) and not all(flag for _, flag in expected)
    model.eval()  # what an evaluation that does not restore the flags would leave
    modes.ensure()
    assert [(m, m.training) for m in model.modules()] == expected
    model.heads["topic"].train(False)
    model.encoder.train(True)  # the frozen layer's dropout switched on
    modes.ensure()
    assert [(m, m.training) for m in model.modules()] == expected
    apply_freezing(model, set())


def test_frozen_parameters_are_bit_for_bit_unchanged(tmp_path, tiny_bert_dir):
    config = small_config(str(tiny_bert_dir), tmp_path / "run", max_steps=6, backbone_dropout=0.1)
    config["freeze"] = {"embeddings": True, "lower": 1, "head": "topic"}
    before = MultiTaskModel(SentenceEncoder(tiny_bert_dir, device="cpu"), [TaskSpec("x", ["a", "b"])])
    result = train(load_config(write_config(tmp_path / "c.yaml", config)))
    after = SentenceEncoder(result.model_dir, device="cpu")
    initial = before.encoder.backbone.state_dict()
    trained = after.backbone.state_dict()
    changed = {k for k in initial if not torch.equal(initial[k], trained[k])}
    assert changed, "the unfrozen layer must train"
    assert not any(k.startswith(("embeddings.", "encoder.layer.0.")) for k in changed), changed
    assert all(k.startswith("encoder.layer.1.") for k in changed), changed
    # The frozen head never moved: it equals the head that a run training nothing (same seed) saves as built.
    untrained_config = small_config(str(tiny_bert_dir), tmp_path / "untrained")
    untrained_config["freeze"] = {"all": True}
    untrained = train(load_config(write_config(tmp_path / "u.yaml", untrained_config)))
    heads_after = load_file(str(result.model_dir / "heads.safetensors"))
    heads_built = load_file(str(untrained.model_dir / "heads.safetensors"))
    for key in heads_built:
        same = torch.equal(heads_after[key], heads_built[key])
        assert same if key.startswith("topic.") else not same, key


def test_freezing_everything_is_reported_not_a_crash(tmp_path, tiny_bert_dir):
    config = small_config(str(tiny_bert_dir), tmp_path / "run")
    config["freeze"] = {"all": True}
    result = train(load_config(write_config(tmp_path / "c.yaml", config)))
    assert result.steps == 0
    assert "nothing to train" in result.stop_reason
    assert set(result.test_metrics) == {"topic", "sentiment"}
    assert (result.model_dir / "heads.safetensors").exists()


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_lower_n_keeps_the_frozen_layers_outputs_unchanged_after_training(kind, tiny_model_dir, rt_texts):
    """Everything the lowest layer computes with is frozen, shared parts included (MPNet's relative attention bias)."""
    torch.manual_seed(0)
    model = MultiTaskModel(SentenceEncoder(tiny_model_dir(kind), device="cpu"), [TaskSpec("t", ["a", "b"])])
    parts = model_parts(model)
    frozen = frozen_names(parts, FreezeConfig(lower=1))
    if kind == "mpnet":
        assert "encoder.backbone.encoder.relative_attention_bias.weight" in frozen
    apply_freezing(model, frozen)
    batch = model.encoder.text_tokenizer.pad(model.encoder.text_tokenizer.tokenize(rt_texts[:8]).ids)
    backbone = model.encoder.backbone

    def hidden() -> tuple[torch.Tensor, ...]:
        model.eval()
        with torch.no_grad():
            return backbone(**batch, output_hidden_states=True).hidden_states

    before = hidden()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):
        states = backbone(**batch, output_hidden_states=True).hidden_states
        loss = states[-1].pow(2).mean() + model.head_logits(states[-1][:, 0], ["t"])["t"].sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = hidden()
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1]), kind  # embeddings, layer 0
    assert not torch.equal(before[2], after[2]), kind  # layer 1 trained
