"""LoRA adapters, phases given in epochs, and training that starts from a saved model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from polyhead.errors import InputError
from polyhead.model import load
from polyhead.training import train
from polyhead.training.config import config_from_dict
from polyhead.task_adapters import adapter_targets, unload_adapters
from polyhead.training.adapters import add_lora
from polyhead.training.config import LoraConfig
from tests.conftest import TINY_KINDS, build_tiny_model
from tests.training.conftest import small_config

TEXTS = ["a quiet film about grief", "the capital of France is Paris", "two hours of my life I will never get back"]


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_adapters_are_found_on_every_family_and_merge_exactly(tmp_path, kind):
    """Adapters sit in every linear layer of the blocks; merged weights compute what the adapters did."""
    from polyhead.encoder import SentenceEncoder

    encoder = SentenceEncoder(str(build_tiny_model(tmp_path / kind, kind)), max_seq_length=32)
    linear_layers = sum(isinstance(m, torch.nn.Linear) for m in encoder.backbone.modules())
    targets = adapter_targets(encoder.backbone)
    assert 0 < len(targets) <= linear_layers
    added = add_lora(encoder.backbone, LoraConfig(rank=4, dropout=0.0))
    assert added > 0
    with torch.no_grad():  # a trained-looking adapter: B is zero at initialisation
        for name, p in encoder.backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    encoder.eval()
    with_adapters = encoder.encode(TEXTS, output="torch")
    unload_adapters(encoder.backbone, merge=True)
    assert not any("lora_" in n for n, _ in encoder.backbone.named_parameters())
    merged = encoder.encode(TEXTS, output="torch")
    assert torch.allclose(with_adapters, merged, atol=1e-5)


def test_lora_trains_adapters_only_and_saves_a_plain_model(tmp_path, tiny_bert_dir):
    config = config_from_dict(small_config(str(tiny_bert_dir), tmp_path / "run", max_steps=6, eval_every=3, learning_rate=5e-3))
    config.model.lora = LoraConfig(rank=4)
    before = load_file(str(tiny_bert_dir / "model.safetensors"))
    result = train(config)
    events = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    start = next(e for e in events if e.get("message") == "training")
    heads = sum(p.numel() for p in load(result.model_dir).heads.parameters())
    assert heads < start["parameters"]["trainable"] < 0.5 * start["parameters"]["total"]
    saved = load_file(str(result.model_dir / "model.safetensors"))
    assert not any("lora_" in k or "base_layer" in k for k in saved)
    # The adapters changed what the layers compute (merged into their weights); embeddings never move.
    changed = [k for k in saved if k in before and not torch.equal(saved[k], before[k])]
    assert changed and all(".layer." in k for k in changed)
    model = load(result.model_dir)
    again = model.predict_probabilities(TEXTS)
    assert set(again) == {"topic", "sentiment"}


def test_phases_in_epochs_and_patience_per_phase(tmp_path, tiny_bert_dir):
    raw = small_config(str(tiny_bert_dir), tmp_path / "run", max_steps=None, eval_every=5,
                       early_stopping={"metric": "macro_f1", "patience": 1})
    raw["tasks"]["topic"]["max_train_examples"] = 40
    raw["tasks"]["sentiment"]["max_train_examples"] = 40
    raw["phases"] = [{"epochs": 1.0, "freeze": {"backbone": True}, "name": "heads"}, {"epochs": 0.5, "name": "all"}]
    result = train(config_from_dict(raw))
    events = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    start = next(e for e in events if e.get("message") == "start")
    assert start["total_steps"] == 10 + 5  # 80 examples / batch 8 = 10 steps per epoch
    assert any(str(e.get("message", "")).startswith("phase 2/2") for e in events)
    with pytest.raises(InputError, match="either steps or epochs"):
        config_from_dict({**raw, "phases": [{"steps": 3, "epochs": 1.0}]})


def test_training_starts_from_a_saved_model_with_its_heads(tmp_path, tiny_bert_dir):
    first = train(config_from_dict(small_config(str(tiny_bert_dir), tmp_path / "first", max_steps=4)))
    saved = load(first.model_dir)
    # Nothing trains: the run evaluates exactly the saved heads on the saved encoder.
    raw = small_config(str(first.model_dir), tmp_path / "second", max_steps=1)
    raw["freeze"] = {"all": True}
    second = train(config_from_dict(raw))
    assert second.test_metrics["topic"]["accuracy"] == pytest.approx(first.test_metrics["topic"]["accuracy"])
    assert torch.equal(load(second.model_dir).heads["topic"].state_dict()["net.0.weight"] if "net.0.weight" in saved.heads["topic"].state_dict()
                       else next(iter(load(second.model_dir).heads["topic"].parameters())), next(iter(saved.heads["topic"].parameters())))
    raw["tasks"]["topic"]["head"] = {"dropout": 0.0, "hidden_sizes": [7]}
    raw["output_dir"] = str(tmp_path / "third")
    with pytest.raises(InputError, match="another head"):
        train(config_from_dict(raw))


def test_a_saved_head_extends_to_new_labels_keeping_its_trained_rows(tmp_path, tiny_bert_dir):
    """The saved model knows two classes; the new data has a third: its row is new, the others are the trained ones."""
    import json

    rows = [("a good film", "pos"), ("a bad film", "neg"), ("a film", "neutral")] * 30
    files = {}
    for split in ("train", "validation"):
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in rows))
        files[split] = str(path)
    two = tmp_path / "two.jsonl"
    two.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in rows if l != "neutral"))
    first_config = small_config(str(tiny_bert_dir), tmp_path / "first", tasks=(), max_steps=4)
    first_config["tasks"] = {"tone": {"data": {"train": str(two), "validation": str(two)}, "head": {"dropout": 0.0}}}
    first = train(config_from_dict(first_config))
    before = load(first.model_dir).heads["tone"].layers[-1]
    second_config = small_config(str(first.model_dir), tmp_path / "second", tasks=(), max_steps=1)
    second_config["tasks"] = {"tone": {"data": files, "head": {"dropout": 0.0}}}
    second_config["freeze"] = {"all": True}
    with pytest.raises(InputError, match="extend_labels: true"):
        train(config_from_dict(second_config))
    second_config["tasks"]["tone"]["extend_labels"] = True
    second = train(config_from_dict(second_config))
    extended = load(second.model_dir)
    assert extended.tasks["tone"].labels == ["neg", "neutral", "pos"]
    after = extended.heads["tone"].layers[-1]
    assert torch.equal(after.weight[0], before.weight[0]) and torch.equal(after.weight[2], before.weight[1])
    assert torch.equal(after.bias[[0, 2]], before.bias)
