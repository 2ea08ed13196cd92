"""A Hugging Face model card (README.md) for every saved polyhead model.

YAML metadata (library, pipeline tag, base model, datasets, per-task test metrics as a
model-index) is rendered by `huggingface_hub`, so the hub reads it as it reads any card; the
body says what the model predicts, how well (when a training run knows its test metrics), how
it was trained, how to load it in polyhead and in sentence-transformers, and its limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .assets import DEFAULT_MODEL_NAME, default_model_path
from .markdown import markdown_table
from .tasks import get_kind, summary_tables

CARD_FILE = "README.md"
DEFAULT_MODEL_HUB_ID = f"sentence-transformers/{DEFAULT_MODEL_NAME}"
HUB_DATASETS = {"rotten_tomatoes": "cornell-movie-review-data/rotten_tomatoes"}
"""Built-in datasets that have a Hugging Face Hub id (for the card's `datasets:` metadata)."""


@dataclass
class TrainingFacts:
    """What a training run knows beyond the model itself."""

    test_metrics: dict[str, dict] = field(default_factory=dict)
    """Per task: the test split's metrics (accuracy, macro_f1, support, ...)."""
    recipe: dict = field(default_factory=dict)
    """The resolved run config (freezing, phases, learning rates, budget)."""
    steps: int | None = None
    best_step: int | None = None
    training_time_s: float | None = None
    examples_seen: dict[str, int] = field(default_factory=dict)


def base_model_id(source: str | None) -> str | None:
    """The hub id the encoder started from: the built-in model's, a hub name, or the one a local model's card names."""
    if source is None:
        return DEFAULT_MODEL_HUB_ID
    path = Path(source)
    if path.is_dir():
        if path.resolve() == default_model_path().resolve():
            return DEFAULT_MODEL_HUB_ID
        return read_card_metadata(path).get("base_model")
    return source


def read_card_metadata(directory: Path) -> dict:
    """The YAML front matter of a directory's README.md ({} when there is none)."""
    card = directory / CARD_FILE
    if not card.is_file():
        return {}
    match = re.match(r"^---\n(.*?)\n---\n", card.read_text(encoding="utf-8"), re.DOTALL)
    data = yaml.safe_load(match.group(1)) if match else None
    return data if isinstance(data, dict) else {}


def _data_name(data) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        if data.get("hf"):  # a Hugging Face dataset: its hub name or its save_to_disk directory
            return str(data["hf"])
        return Path(str(data.get("train", "files"))).name
    return "unknown"


def _hub_dataset(data) -> str | None:
    """The dataset's Hugging Face Hub id, where it has one."""
    if isinstance(data, dict) and data.get("hf") and not Path(str(data["hf"])).exists() and not str(data["hf"]).startswith("<"):
        return str(data["hf"])
    return HUB_DATASETS.get(_data_name(data).split(":")[0])


def _metadata(model_name: str, tasks: list[dict], base_model: str | None, facts: TrainingFacts | None) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    results = []
    for task in tasks:
        metrics = (facts.test_metrics if facts else {}).get(task["name"])
        if not metrics:
            continue
        name, kind = _data_name(task.get("data")), get_kind(task.get("kind"))
        for key, metric_type, label, args in kind.hub_metrics():
            results.append(EvalResult(task_type=kind.hub_task_type, task_name=task["name"], dataset_type=name.split(":")[0],
                                      dataset_name=name, dataset_split="test", metric_type=metric_type,
                                      metric_value=round(float(metrics[key]), 4), metric_name=label, metric_args=args))
    datasets = sorted({hub for hub in (_hub_dataset(t.get("data")) for t in tasks) if hub})
    data = ModelCardData(
        library_name="polyhead", pipeline_tag="text-classification", base_model=base_model, datasets=datasets or None,
        tags=["polyhead", "sentence-transformers", "multi-task", "text-classification", "sentence-embeddings"],
        model_name=model_name, eval_results=results or None,
    )
    return data.to_yaml()


def _metrics_table(tasks: list[dict], facts: TrainingFacts | None) -> list[str]:
    if not facts or not facts.test_metrics:
        return ["No test metrics were recorded with this model (it was saved outside a training run, or its tasks had no test split)."]
    measured = {task["name"]: facts.test_metrics[task["name"]] for task in tasks if task["name"] in facts.test_metrics}
    return "\n\n".join(markdown_table(headers, rows) for headers, rows in summary_tables(measured)).splitlines()


def _recipe_lines(facts: TrainingFacts | None) -> list[str]:
    if not facts or not facts.recipe:
        return ["Not recorded."]
    recipe = facts.recipe
    t = recipe.get("training", {})
    lines = [
        f"- freezing: `{recipe.get('freeze') or 'nothing'}`" + (f"; phases: {len(recipe['phases'])}" if recipe.get("phases") else ""),
        f"- learning rates: backbone {t.get('learning_rate')}, heads {t.get('head_learning_rate')}, layer decay {t.get('layer_decay')}",
        f"- batch size {t.get('batch_size')}, seed {t.get('seed')}, task mixing {t.get('mixing')}, loss weighting {t.get('loss_weighting')}",
    ]
    if t.get("epochs") == "auto" and t.get("max_steps") is None and not recipe.get("phases"):
        lines.append(f"- length: epochs auto (stops when validation stops improving, at most {t.get('max_epochs', 10):g} epochs)")
    settings = {name: [f"{key} {task[key]}" for key in ("class_weights", "sampling") if task.get(key) not in (None, "natural")]
                for name, task in (recipe.get("tasks") or {}).items()}
    balance = [f"{name}: {', '.join(chosen)}" for name, chosen in settings.items() if chosen]
    if balance:
        lines.append("- imbalanced classes: " + "; ".join(balance))
    if recipe.get("model", {}).get("lora"):
        lines.append(f"- LoRA adapters {recipe['model']['lora']} (merged into the saved weights)")
    if facts.steps is not None:
        lines.append(f"- {facts.steps} optimizer steps; the saved model is the best validation point (step {facts.best_step})")
    if facts.examples_seen:
        lines.append("- examples seen: " + ", ".join(f"{k} {v:,}" for k, v in facts.examples_seen.items()))
    if facts.training_time_s is not None:
        lines.append(f"- training time {facts.training_time_s / 60:.1f} min")
    return lines


def render_model_card(model_config: dict, source: str | None, model_name: str, facts: TrainingFacts | None = None) -> str:
    """README.md text for a model whose `polyhead_model.json` content is `model_config`."""
    tasks = model_config["tasks"]
    base = base_model_id(source)
    task_lines = [f"| {t['name']} | {t.get('kind') or 'classification'} | {len(t['labels'])} | {', '.join(map(str, t['labels'][:8]))}"
                  f"{', …' if len(t['labels']) > 8 else ''} | {_data_name(t.get('data'))} |" for t in tasks]
    first = tasks[0]["name"]
    body = [
        f"# {model_name}",
        "",
        f"A [polyhead](https://pypi.org/project/polyhead/) model: one sentence encoder"
        f"{f' fine-tuned from `{base}`' if base else ''} ({model_config['pooling']} pooling, "
        f"{'L2-normalized' if model_config['normalize'] else 'unnormalized'} {model_config['embedding_dim']}-dimensional embeddings) "
        f"and one head per task.",
        "",
        "| task | kind | outputs | output names | data |",
        "| --- | --- | ---: | --- | --- |",
        *task_lines,
        "",
        "## Test metrics",
        "",
        *_metrics_table(tasks, facts),
        "",
        "## Training",
        "",
        *_recipe_lines(facts),
        "",
        "## Use it",
        "",
        "```python",
        "import polyhead",
        "",
        "model = polyhead.load(\"path/to/this/model\")",
        "model.predict([\"a text to classify\"])  # per text and task: label, probability",
        "embeddings = model.encoder.encode([\"a sentence\"])",
        "```",
        "",
        "```bash",
        f"polyhead predict path/to/this/model \"a text to classify\" --tasks {first}",
        "polyhead serve path/to/this/model   # /v1/embeddings and /v1/predict on 127.0.0.1",
        "```",
        "",
        "The encoder is stored in the sentence-transformers layout, so the embeddings (not the heads) load there too:",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        "SentenceTransformer(\"path/to/this/model\").encode([\"a sentence\"])",
        "```",
        "",
        "## Intended use and limits",
        "",
        "- Made for the tasks above, on texts like their training data; on other domains, measure first "
        "(`polyhead evaluate MODEL --data FILE --label-map A=B`).",
        "- Texts longer than the encoder's `max_seq_length` are truncated (see `sentence_bert_config.json`); "
        "what is cut is not seen.",
        "- The metrics above are on each task's test split as recorded by the training run; they do not carry over "
        "to other data. A classification task's label set is closed: every text gets one of the listed labels.",
        "- English only if the base model is English-only (the built-in all-MiniLM-L6-v2 is).",
        "",
    ]
    return f"---\n{_metadata(model_name, tasks, base, facts)}\n---\n\n" + "\n".join(body)


def write_model_card(directory: Path, model_config: dict, source: str | None, facts: TrainingFacts | None = None,
                     model_name: str | None = None) -> Path:
    from .fileio import atomic_file

    path = Path(directory) / CARD_FILE
    with atomic_file(path) as handle:
        handle.write(render_model_card(model_config, source, model_name or Path(directory).resolve().name, facts))
    return path
