"""Uncertainty weights are learned and restored; a phase change keeps Adam state."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from polyhead.training import load_config, train
from polyhead.training.config import config_from_dict
from polyhead.training.loop import Trainer
from polyhead.training.losses import LossBalancer

from .conftest import small_config, write_config


def test_static_and_equal_weights():
    static = LossBalancer(["a", "b"], "static", {"a": 2.0, "b": 0.5})
    assert float(static("a", torch.tensor(1.0))) == 2.0 and float(static("b", torch.tensor(1.0))) == 0.5
    equal = LossBalancer(["a", "b"], "equal", {"a": 2.0})
    assert equal.weights() == {"a": 1.0, "b": 1.0}


def test_uncertainty_weights_move_and_are_checkpointed(tmp_path, tiny_bert_dir):
    config = small_config(str(tiny_bert_dir), tmp_path / "run", max_steps=8, loss_weighting="uncertainty")
    result = train(load_config(write_config(tmp_path / "c.yaml", config)))
    saved = load_file(str(result.run_dir / "checkpoints" / "last" / "module.safetensors"))
    log_variances = {k: float(v) for k, v in saved.items() if k.startswith("balancer.log_variance.")}
    assert set(log_variances) == {"balancer.log_variance.topic", "balancer.log_variance.sentiment"}
    assert all(v != 0.0 for v in log_variances.values())
    logged = [json.loads(line)["loss_weights"] for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
              if '"type": "train"' in line]
    assert logged[0] != logged[-1]
    resumed = Trainer(load_config(result.run_dir / "config.yaml"), True, tmp_path)
    restored = {f"balancer.log_variance.{t}": float(p.detach()) for t, p in resumed.balancer.log_variance.items()}
    assert restored == log_variances


def test_phase_change_keeps_optimizer_state_of_parameters_that_stay_trainable(tmp_path, tiny_bert_dir):
    data = small_config(str(tiny_bert_dir), tmp_path / "run")
    data["training"].pop("max_steps")
    data["phases"] = [
        {"name": "heads only", "steps": 2, "freeze": {"backbone": True}},
        {"name": "top layer too", "steps": 2, "freeze": {"lower": 1, "embeddings": True}},
    ]
    trainer = Trainer(config_from_dict(data), False, tmp_path)
    head = trainer.model.heads["topic"].layers[-1].weight
    top_layer = next(p for n, p in trainer.module.named_parameters() if ".layer.1." in n)
    assert not top_layer.requires_grad
    for _ in range(2):
        trainer.train_step()
    moments = trainer.optimizer.state[head]["exp_avg"].clone()
    steps = trainer.optimizer.state[head]["step"].clone()
    trainer.enter_phase(trainer.phases[1])
    assert top_layer.requires_grad
    assert torch.equal(trainer.optimizer.state[head]["exp_avg"], moments)
    assert torch.equal(trainer.optimizer.state[head]["step"], steps)
    assert top_layer not in trainer.optimizer.state  # a newly trainable parameter starts fresh
    trainer.train_step()
    assert top_layer in trainer.optimizer.state


def test_early_stopping_inside_a_phase_moves_on_to_the_next(tmp_path, tiny_bert_dir):
    """Heads trained in turn: the first head's plateau must not end the run before the second head trains."""
    config = small_config(str(tiny_bert_dir), tmp_path / "run", tasks=("sentiment",), eval_every=2, max_steps=None)
    config["tasks"]["subjectivity"] = {"data": "rotten_tomatoes:subjectivity", "max_train_examples": 200, "max_eval_examples": 60}
    config["phases"] = [
        {"name": "sentiment head", "steps": 40, "freeze": {"backbone": True, "heads": ["subjectivity"]}},
        {"name": "subjectivity head", "steps": 6, "freeze": {"backbone": True, "heads": ["sentiment"]}},
    ]
    config["training"]["early_stopping"] = {"patience": 1, "min_delta": 10.0}  # no evaluation can improve: stop at the second
    result = train(load_config(write_config(tmp_path / "config.yaml", config)))
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    messages = [e["message"] for e in events if e["type"] == "event"]
    assert any("phase 1 (sentiment head) ends here, phase 2 starts" in m for m in messages), messages
    assert any(m.startswith("phase 2/2") for m in messages), messages
    assert 40 < result.steps <= 46 and "early stopping" in result.stop_reason
