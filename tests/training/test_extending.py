"""Adding a task to a trained model: model.from, the protection strategies, and what they keep of the old tasks."""

from __future__ import annotations

import copy

import pytest
import torch

from polyhead.errors import InputError
from polyhead.fileio import read_json, write_json
from polyhead.model import MultiTaskModel
from polyhead.training.config import config_from_dict
from polyhead.training.loop import train
from tests.training.conftest import small_config

TEXTS = ["a fine film, warm and funny", "what a waste of two hours", "This state capital sits on the Missouri River",
         "the plot follows two brothers across the desert"]
NEW_TASK = {"data": "rotten_tomatoes:subjectivity", "max_train_examples": 120, "max_eval_examples": 40, "head": {"dropout": 0.0}}


@pytest.fixture(scope="module")
def base_model(tiny_bert_dir, tmp_path_factory):
    """A tiny model trained on topic + sentiment: the model that gets a third task."""
    run = tmp_path_factory.mktemp("base")
    train(config_from_dict(small_config(str(tiny_bert_dir), run, max_steps=8)))
    return run / "model"


def extend(base_model, output_dir, strategy: str, **extra) -> dict:
    config = small_config(None, output_dir, tasks=(), max_steps=6, eval_every=3)
    config["model"] = {"from": str(base_model), "max_seq_length": 32}
    # The old tasks listed with small evaluation slices, the new task with its data.
    config["tasks"] = {"topic": {"data": "jeopardy", "max_eval_examples": 40}, "sentiment": {"data": "rotten_tomatoes:sentiment",
                       "max_eval_examples": 40}, "subjectivity": dict(NEW_TASK)}
    config["protect"] = {"strategy": strategy}
    config.update(extra)
    return config


def predictions(model: MultiTaskModel, tasks=("topic", "sentiment")):
    return [{task: row[task] for task in tasks} for row in model.predict(TEXTS, tasks=list(tasks))]


@pytest.mark.parametrize("strategy", ["isolate", "adapter"])
def test_old_tasks_predict_exactly_as_before_after_extending_and_saving_again(base_model, tmp_path, strategy):
    before = MultiTaskModel.load(base_model)
    result = train(config_from_dict(extend(base_model, tmp_path / "run", strategy)))
    extended = MultiTaskModel.load(result.model_dir)
    assert set(extended.tasks) == {"topic", "sentiment", "subjectivity"}
    assert predictions(extended) == predictions(before)
    again = tmp_path / "saved-again"
    extended.save(again)
    reloaded = MultiTaskModel.load(again)
    assert predictions(reloaded) == predictions(before)
    assert [row["subjectivity"] for row in reloaded.predict(TEXTS)] == [row["subjectivity"] for row in extended.predict(TEXTS)]
    guard = read_json(result.run_dir / "guard.json")
    assert guard["passed"] and all(row["drop"] == 0 for row in guard["rows"])
    assert guard["lee_spearman"]["before"] == guard["lee_spearman"]["after"]  # the shared encoder's embedding space
    assert "Old tasks before and after" in (result.run_dir / "report.md").read_text()


def test_adapter_task_has_its_own_adapter_and_the_shared_encoder_is_unchanged(base_model, tmp_path):
    result = train(config_from_dict(extend(base_model, tmp_path / "run", "adapter")))
    extended = MultiTaskModel.load(result.model_dir)
    assert extended.tasks["subjectivity"].adapter == "subjectivity" and extended.tasks["topic"].adapter is None
    assert (result.model_dir / "adapters.safetensors").is_file()
    base = MultiTaskModel.load(base_model)
    shared = {k: v for k, v in base.encoder.backbone.state_dict().items()}
    saved = MultiTaskModel.load(result.model_dir)
    # Unrouted, the loaded encoder is the shared one (embeddings, lee, /v1/embeddings), not the adapter's view.
    assert torch.equal(saved.encoder.encode(TEXTS, output="torch"), base.encoder.encode(TEXTS, output="torch"))
    with saved.routed("topic"):
        assert torch.equal(saved.encoder.encode(TEXTS, output="torch"), base.encoder.encode(TEXTS, output="torch"))
    with saved.routed("subjectivity"):
        adapted = saved.encoder.encode(TEXTS, output="torch")
    assert not torch.equal(adapted, base.encoder.encode(TEXTS, output="torch"))  # the trained adapter changes the new task's view
    assert all(torch.equal(v, shared[k]) for k, v in saved.encoder.backbone.state_dict().items() if k in shared)
    with pytest.raises(InputError, match="own adapters"):
        from polyhead.inference.export import model_parts

        model_parts(saved)


def test_rehearsal_mixes_the_old_tasks_back_in_at_the_stated_share(base_model, tmp_path):
    config = extend(base_model, tmp_path / "run", "rehearsal")
    config["protect"]["rehearsal_share"] = 0.4
    train(config_from_dict(config))
    start = next(e for e in map(__import__("json").loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
                 if e.get("message") == "start")
    shares = start["mixing_probabilities"]
    assert shares["topic"] + shares["sentiment"] == pytest.approx(0.4)
    assert shares["subjectivity"] == pytest.approx(0.6)
    events = [__import__("json").loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rates = {g["name"]: g["lr"] for e in events if e.get("message") == "training" for g in e["param_groups"]}
    # Trained heads learn at the backbone's rate, the fresh one at the heads' rate.
    assert rates["head.topic"] == rates["layer.1"] == pytest.approx(5e-5) and rates["head.subjectivity"] == pytest.approx(1e-2)


def test_distillation_and_plain_train_the_encoder_but_no_old_head(base_model, tmp_path):
    base = MultiTaskModel.load(base_model)
    for strategy in ("distillation", "plain"):
        config = extend(base_model, tmp_path / strategy, strategy)
        if strategy == "plain":  # plain: the new task alone
            config["tasks"] = {"subjectivity": dict(NEW_TASK)}
        result = train(config_from_dict(config))
        extended = MultiTaskModel.load(result.model_dir)
        same_heads = all(torch.equal(extended.heads["topic"].state_dict()[k], v) for k, v in base.heads["topic"].state_dict().items())
        assert same_heads  # no old task trains under either strategy
        changed = any(not torch.equal(v, base.encoder.backbone.state_dict()[k]) for k, v in extended.encoder.backbone.state_dict().items())
        assert changed
        assert set(read_json(result.run_dir / "test_metrics.json")["tasks"]) == {"topic", "sentiment", "subjectivity"}


def test_a_changed_label_set_is_an_error_naming_the_task(base_model, tmp_path):
    config = extend(base_model, tmp_path / "run", "isolate")
    config["tasks"]["sentiment"] = {"data": "rotten_tomatoes:subjectivity", "max_eval_examples": 40}
    with pytest.raises(InputError, match="tasks.sentiment") as error:
        train(config_from_dict(config))
    assert "labels" in str(error.value) and "extend_labels" in str(error.value)


def test_guard_check_fails_keeps_the_starting_model_and_sets_the_new_one_apart(base_model, tmp_path):
    files = {p: p.read_bytes() for p in base_model.rglob("*") if p.is_file()}
    run = tmp_path / "run"
    run.mkdir()
    # The starting model's figures as a run reads them back: set higher than any model reaches, so the drop is certain.
    perfect = {task: {"score": 1.0} for task in ("topic", "sentiment")}
    write_json(run / "guard_before.json", {"tasks": {"validation": perfect, "test": perfect}, "lee_spearman": 1.0})
    from polyhead.training.loop import TrainingError

    with pytest.raises(TrainingError, match="guard check failed") as error:
        train(config_from_dict(extend(base_model, run, "isolate", guard={"max_drop": 0.01})))
    assert "task 'topic': score on test fell" in str(error.value) and "model.rejected" in str(error.value)
    assert (run / "model.rejected" / "polyhead_model.json").is_file()
    assert not (run / "model").exists()
    guard = read_json(run / "guard.json")
    assert guard["passed"] is False and len(guard["failures"]) == 2  # topic and sentiment; lee has no tolerance set
    assert "Guard check failed" in (run / "report.md").read_text()
    assert {p: p.read_bytes() for p in base_model.rglob("*") if p.is_file()} == files


def test_config_errors_say_what_is_wrong(base_model, tmp_path):
    with pytest.raises(InputError, match="model.from"):
        config_from_dict({**small_config(None, tmp_path), "protect": {"strategy": "isolate"}})
    with pytest.raises(InputError, match="not both"):
        config_from_dict({**small_config("x", tmp_path), "model": {"name": "x", "from": str(base_model)}})
    with pytest.raises(InputError, match="unknown strategy"):
        config_from_dict({**small_config(None, tmp_path), "protect": {"strategy": "freeze"}})
    missing = copy.deepcopy(extend(tmp_path / "nowhere", tmp_path / "run", "isolate"))
    with pytest.raises(InputError, match="no such directory"):
        train(config_from_dict(missing))


def test_an_old_task_listed_without_data_keeps_its_recorded_data_and_head(base_model, tmp_path):
    """`tasks.topic.max_eval_examples=40` on the command line names the old task, not a new one on the default data."""
    from polyhead.training.extending import add_saved_tasks

    config = config_from_dict({**small_config(None, tmp_path / "run", tasks=()), "model": {"from": str(base_model)},
                               "tasks": {"topic": {"max_eval_examples": 40}, "subjectivity": dict(NEW_TASK)}})
    saved = {t["name"]: t for t in read_json(base_model / "polyhead_model.json")["tasks"]}
    add_saved_tasks(config)
    topic = config.tasks["topic"]
    assert (topic.data, topic.kind, topic.max_eval_examples) == (saved["topic"]["data"], saved["topic"]["kind"], 40)
    assert topic.head.hidden_sizes == saved["topic"]["head"]["hidden_sizes"]
    assert config.tasks["sentiment"].share == 0.0, "an old task left out joins, evaluated only"


def test_cli_prints_the_old_tasks_before_and_after_and_a_failed_guard_exits_1(base_model, tmp_path):
    from tests.training.conftest import run_polyhead, write_config

    config = write_config(tmp_path / "extend.yaml", extend(base_model, tmp_path / "run", "isolate"))
    done = run_polyhead("train", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "old tasks of" in done.stdout and "topic" in done.stdout and "(drop +0.0000)" in done.stdout
    failing = extend(base_model, tmp_path / "run2", "isolate", guard={"lee_max_drop": 0.0})
    (tmp_path / "run2").mkdir()
    write_json(tmp_path / "run2" / "guard_before.json", {"tasks": {"validation": {}, "test": {}}, "lee_spearman": 1.0})
    done = run_polyhead("train", str(write_config(tmp_path / "failing.yaml", failing)))
    assert done.returncode == 1
    assert "guard check failed" in done.stderr and "lee Spearman fell" in done.stderr


@pytest.mark.parametrize("strategy", ["adapter", "distillation"])
def test_an_extension_run_resumes_from_its_checkpoint(base_model, tmp_path, strategy):
    config = extend(base_model, tmp_path / "run", strategy)
    first = train(config_from_dict(config))
    assert first.steps == 6
    config["training"]["max_steps"] = 9
    resumed = train(config_from_dict(config), resume=True)
    assert resumed.steps == 9
    if strategy == "adapter":  # the resumed adapter still leaves the old tasks exactly as they were
        assert predictions(MultiTaskModel.load(resumed.model_dir)) == predictions(MultiTaskModel.load(base_model))
    assert read_json(tmp_path / "run" / "guard.json")["passed"]
