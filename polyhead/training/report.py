"""The run report: `report.md` and plots in a run directory, built from its `metrics.jsonl`.

The log's format is documented in `polyhead.training.metrics_log`. The best validation step is
the one a `test` line names in `best_step`; without one, the `eval` line with the highest
`score`, or lacking scores, the highest macro-F1 averaged over tasks. Results come from
`test_metrics` if given, else the last `test` line, else that best step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import InputError
from ..fileio import atomic_file
from ..markdown import markdown_table
from ..metrics import PER_CLASS_HEADERS, per_class_rows
from ..tasks import get_kind, summary_tables
from ..tasks.plots import figure as _figure
from .metrics_log import Record, check_task_metrics, read_metrics_log

LOG_NAME = "metrics.jsonl"
REPORT_NAME = "report.md"
PLOTS_DIR = "plots"



# ---------------------------------------------------------------- the report


def write_report(
    run_dir: str | Path, test_metrics: Mapping[str, Mapping[str, Any]] | None = None, title: str = "polyhead training run"
) -> Path:
    """Write `run_dir/report.md` and `run_dir/plots/*.png` from the run's metrics log; return the report path.

    Each file is written to a temp file and renamed into place, so a crash leaves the
    previous version or nothing, never half a file.
    """
    run_dir = Path(run_dir)
    records = read_metrics_log(run_dir / LOG_NAME)
    if test_metrics is not None:
        if not isinstance(test_metrics, Mapping) or not test_metrics:
            raise InputError("test_metrics must be a non-empty mapping of task -> metrics", field="test_metrics")
        for task, metrics in test_metrics.items():
            check_task_metrics(metrics, f"test_metrics.{task}")

    train = [r for r in records if r["type"] == "train"]
    evals = [r for r in records if r["type"] == "eval" and r.get("split", "validation") == "validation"]
    tests = [r for r in records if r["type"] == "test"]
    named = [r["best_step"] for r in tests if r.get("best_step") is not None]
    best = best_validation(evals, named[-1] if named else None)
    if tests and (test_metrics is None or tests[-1]["tasks"] == test_metrics):
        results, source = tests[-1]["tasks"], f"test, step {tests[-1]['step']}"
    elif test_metrics is not None:
        results, source = dict(test_metrics), "test"
    elif best is not None:
        results, source = best["tasks"], f"validation, best step {best['step']}"
    else:
        results, source = {}, ""

    plots = run_dir / PLOTS_DIR
    images: dict[str, str] = {}
    if train:
        images["loss"] = _save(plot_losses(train), plots / "loss.png")
    if evals:
        images["validation"] = _save(plot_validation(evals, best, stop_event(records)), plots / "validation.png")
    stems: set[str] = set()
    for task, metrics in results.items():
        kind = get_kind(metrics.get("kind"))
        figure = kind.plot(task, metrics, source)
        if figure is not None:
            images[f"plot:{task}"] = _save(figure, plots / f"{kind.plot_file}_{_file_stem(task, stems)}.png")

    markdown = render_markdown(title, records, results, source, best, images, run_dir)
    report = run_dir / REPORT_NAME
    with atomic_file(report) as handle:
        handle.write(markdown)
    return report


def best_validation(evals: Sequence[Record], best_step: int | None = None) -> Record | None:
    """The validation record the run kept: the one at `best_step` when known, else the best scored.

    Without `best_step`, records are ranked by their `score` (the loop's selection metric)
    when every record has one, else by macro-F1 averaged over tasks; the earliest wins a tie.
    """
    if best_step is not None:
        at_step = [r for r in evals if r["step"] == best_step]
        if at_step:
            return at_step[-1]
    use_score = bool(evals) and all(r.get("score") is not None for r in evals)
    best, best_score = None, -math.inf
    for record in evals:
        score = record["score"] if use_score else _mean_macro_f1(record)
        if score > best_score:
            best, best_score = record, score
    return best


def _mean_macro_f1(record: Record) -> float:
    """The mean of each task's score (its kind's selection metric; macro-F1 in logs written before kinds)."""
    return float(np.mean([_task_score(m) for m in record["tasks"].values()]))


def _task_score(metrics: Mapping[str, Any]) -> float:
    return float(metrics["score"] if metrics.get("score") is not None else metrics["macro_f1"])


def _file_stem(task: str, used: set[str]) -> str:
    """A file-name-safe stem for a task, unique within one report ("a:b" and "a/b" both map to "a_b")."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", task).strip("._") or "task"
    stem, n = base, 2
    while stem in used:
        stem, n = f"{base}_{n}", n + 1
    used.add(stem)
    return stem


# ---------------------------------------------------------------- plots


def plot_losses(train: Sequence[Record]) -> Figure:
    """Training loss per task over steps, plus the weighted total where logged."""
    figure, ax = _figure((8, 4.5))
    for task in _tasks_in_order(r["loss"] for r in train):
        points = [(r["step"], r["loss"][task]) for r in train if task in r["loss"]]
        _line(ax, points, label=task)
    totals = [(r["step"], r["total_loss"]) for r in train if r.get("total_loss") is not None]
    if totals:
        _line(ax, totals, label="total (weighted)", color="black", linestyle="--", linewidth=1.2)
    ax.set(xlabel="step", ylabel="training loss", title="Training loss")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    return figure


def stop_event(records: Sequence[Record]) -> Mapping[str, Any] | None:
    """Where and why the run stopped (the last `stop` event), or None for runs that logged none."""
    stops = [r["stop"] for r in records if r["type"] == "event" and isinstance(r.get("stop"), dict)]
    return stops[-1] if stops else None


def plot_validation(evals: Sequence[Record], best: Record | None, stop: Mapping[str, Any] | None = None) -> Figure:
    """Validation accuracy (with each task's majority rate dotted) and each task's score over steps.

    The score is the task kind's selection metric (macro-F1 for classification, Spearman for
    regression, micro-F1 for multi-label); tasks without accuracy are absent from that panel.
    """
    figure, (acc_ax, f1_ax) = _figure((11, 4.2), ncols=2, sharex=True)
    for index, task in enumerate(_tasks_in_order(r["tasks"] for r in evals)):
        color = f"C{index % 10}"
        logged = [r for r in evals if task in r["tasks"]]
        metric = get_kind(logged[-1]["tasks"][task].get("kind")).score_metric
        if all("accuracy" in r["tasks"][task] for r in logged):
            _line(acc_ax, [(r["step"], r["tasks"][task]["accuracy"]) for r in logged], label=task, color=color)
        _line(f1_ax, [(r["step"], _task_score(r["tasks"][task])) for r in logged], label=f"{task} ({metric})", color=color)
        majority = logged[-1]["tasks"][task].get("majority_rate")
        if majority is not None:
            acc_ax.axhline(majority, color=color, linestyle=":", linewidth=1)
    for ax, name in ((acc_ax, "accuracy (dotted: majority rate)"), (f1_ax, "score")):
        if best is not None:
            ax.axvline(best["step"], color="grey", linewidth=0.8, alpha=0.6)
        if stop is not None:
            ax.axvline(stop["step"], color="black", linestyle="--", linewidth=0.8, alpha=0.6)
        ax.set(xlabel="step (grey: best, dashed: stopped)" if stop is not None else "step", ylabel=name, title=f"Validation {name.split(' ')[0]}", ylim=(min(0.0, ax.get_ylim()[0]), 1.02))
        ax.grid(alpha=0.3)
    f1_ax.legend(fontsize=8)
    return figure


def _line(ax: Any, points: Sequence[tuple[float, float]], **style: Any) -> None:
    steps, values = zip(*points)
    marker = "o" if len(points) <= 30 else None
    ax.plot(steps, values, marker=marker, markersize=3, **style)


def _tasks_in_order(dicts: Any) -> list[str]:
    """Task names in the order they first appear, so colours stay stable from plot to plot."""
    seen: dict[str, None] = {}
    for d in dicts:
        seen.update(dict.fromkeys(d))
    return list(seen)


def _save(figure: Figure, path: Path) -> str:
    """Render a figure to PNG atomically; return its path relative to the run directory."""
    with atomic_file(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi="figure")
    return f"{PLOTS_DIR}/{path.name}"


# ---------------------------------------------------------------- markdown


def render_markdown(
    title: str,
    records: Sequence[Record],
    results: Mapping[str, Mapping[str, Any]],
    source: str,
    best: Record | None,
    images: Mapping[str, str],
    run_dir: Path,
) -> str:
    """The report's text: run facts, results table, plots, per-class tables and logged events."""
    out = [f"# {title}", "", *_facts(records, results, best), ""]
    if results:
        out += [f"## Results ({source})", ""] + _summary_markdown(results)
        if any("majority_rate" in m for m in results.values()):
            out += ["Majority rate: the accuracy of always answering the most frequent class, the baseline to beat.", ""]
    else:
        out += ["## Results", "", "No evaluation was logged, so there are no results yet.", ""]
    out += _length_section(records)
    if "loss" in images:
        out += ["## Training loss", "", f"![Training loss per task]({images['loss']})", ""]
    if "validation" in images:
        out += ["## Validation", "", f"![Validation accuracy and score per task]({images['validation']})", ""]
        if best is not None:
            out += [f"At the best validation step ({best['step']}):", ""] + _summary_markdown(best["tasks"])
    plotted = [(task, images[f"plot:{task}"]) for task in results if f"plot:{task}" in images]
    if plotted:
        out += [f"## Per-task plots ({source})", ""]
        for task, link in plotted:
            kind = get_kind(results[task].get("kind"))
            out += [f"### {task}", "", kind.plot_caption, "", f"[![{task} {kind.plot_file}]({link})]({link})", ""]
    out += _imbalance_section(records, results, source)
    per_class = [(task, m) for task, m in results.items() if m.get("per_class")]
    if per_class:
        out += [f"## Per-class metrics ({source})", ""]
        for task, metrics in per_class:
            out += [f"### {task} ({len(metrics['per_class'])} classes)", ""]
            out += [markdown_table(PER_CLASS_HEADERS, per_class_rows(metrics)), ""]
    events = [r for r in records if r["type"] == "event"]
    if events:
        out += ["## Events", ""]
        out += [f"- step {r.get('step', '?')}: {r.get('message', '')}" for r in events] + [""]
    out += [f"Built from `{LOG_NAME}` in `{run_dir.name}`."]
    return "\n".join(out) + "\n"


def _summary_markdown(metrics_by_task: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One table per kind of task present (each kind has its own columns)."""
    out = []
    for headers, rows in summary_tables(dict(metrics_by_task)):
        out += [markdown_table(headers, rows), ""]
    return out


def _imbalance_section(records: Sequence[Record], results: Mapping[str, Mapping[str, Any]], source: str) -> list[str]:
    """The run start's imbalanced tasks, with their smallest classes' precision and recall: what accuracy hides."""
    start = next((r for r in records if r["type"] == "event" and r.get("message") == "start"), None)
    found = (start or {}).get("imbalance") or {}
    out = []
    for task, info in found.items():
        per_class = (results.get(task) or {}).get("per_class") or {}
        setting = [f"class_weights: {info['class_weights']}" if isinstance(info.get("class_weights"), str) else
                   "class_weights: a mapping" if info.get("class_weights") else "no class weights",
                   f"sampling: {info.get('sampling', 'natural')}"]
        out += [f"### {task}: largest class {info['ratio']:g}x its smallest ({', '.join(setting)})", ""]
        rows = [[name, f"{info['counts'][name]:,}", *(f"{per_class[name][key]:.3f}" if name in per_class else "-"
                                                       for key in ("precision", "recall", "f1")),
                 str(per_class[name]["support"]) if name in per_class else "-"] for name in info["small"]]
        out += [markdown_table(("class", "training examples", "precision", "recall", "F1", "support"), rows), ""]
    return ([f"## Small classes ({source})", ""] + out) if out else []


def _length_section(records: Sequence[Record]) -> list[str]:
    """Texts cut at max_seq_length and token length percentiles, per task and split (the run start's table)."""
    from ..truncation import LENGTH_HEADERS, length_notes, length_rows

    logged = [r for r in records if r["type"] == "lengths" and isinstance(r.get("tasks"), dict)]
    if not logged:
        return []
    record = logged[-1]
    side = record.get("truncation", "head")
    out = ["## Text lengths", "", f"Tokens per text before truncation at max_seq_length {record.get('max_seq_length')} "
           f"(truncation keeps the {side}).", "", markdown_table(LENGTH_HEADERS, length_rows(record["tasks"])), ""]
    notes = length_notes(record["tasks"], side, None)
    return out + [f"- {note}" for note in notes] + ([""] if notes else [])


def _facts(records: Sequence[Record], results: Mapping[str, Mapping[str, Any]], best: Record | None) -> list[str]:
    facts = []
    logged = (r["loss"] if r["type"] == "train" else r["tasks"] for r in records if r["type"] in ("train", "eval", "test"))
    tasks = _tasks_in_order([results, *logged])
    if tasks:
        facts.append("- **tasks**: " + ", ".join(_describe_task(t, results.get(t)) for t in tasks))
    steps = [r["step"] for r in records if isinstance(r.get("step"), int)]
    epochs = [r["epoch"] for r in records if r.get("epoch") is not None]
    if steps:
        facts.append(f"- **steps**: {max(steps)}" + (f" (epoch {max(epochs):.2f})" if epochs else ""))
    elapsed = [r["elapsed_s"] for r in records if r.get("elapsed_s") is not None]
    if elapsed:
        facts.append(f"- **training time**: {_duration(max(elapsed))}")
    facts += _speed_facts(records)
    stop = stop_event(records)
    if stop is not None:
        best_at = f"; best validation at epoch {stop['best_epoch']:.2f}" if stop.get("best_epoch") is not None else ""
        facts.append(f"- **stopped**: step {stop['step']} (epoch {stop['epoch']:.2f}): {stop['reason']}{best_at}")
    if best is not None:
        facts.append(
            f"- **best validation step**: {best['step']} "
            f"(score {_mean_macro_f1(best):.3f}, averaged over {', '.join(best['tasks'])}"
            + (f"; selection score {best['score']:.4g})" if best.get("score") is not None else ")")
        )
    return facts


def _speed_facts(records: Sequence[Record]) -> list[str]:
    """Precision, padding and frozen-part caching: where the run's compute went."""
    facts = []
    start = next((r for r in records if r["type"] == "event" and r.get("message") == "start"), None)
    if start and start.get("mixed_precision"):
        facts.append(f"- **precision**: {start['mixed_precision'].get('reason', start['mixed_precision'].get('used'))}")
    padding: dict[str, list[float]] = {}
    for record in records:
        for task, ratio in (record.get("padding_ratio") or {}).items():
            padding.setdefault(task, []).append(ratio)
    if padding:
        grouped = " (batches grouped by length)" if start and start.get("group_by_length") else " (random batches)"
        shown = ", ".join(f"{task} {sum(v) / len(v):.2f}x" for task, v in padding.items())
        facts.append(f"- **padding** (padded / real tokens in training batches): {shown}{grouped}")
    cuts = [(r.get("phase", 0), r["frozen_cache"]) for r in records if r["type"] == "event" and r.get("frozen_cache")]
    cached = [f"phase {phase + 1}: {cache['cut']}" + (f" {cache['layer']}" if cache.get("layer") else "")
              for phase, cache in cuts if cache.get("cut") not in (None, "none")]
    if cached:
        facts.append("- **frozen parts cached**: " + "; ".join(cached))
    return facts


def _describe_task(task: str, metrics: Mapping[str, Any] | None) -> str:
    metrics = metrics or {}
    labels, kind = metrics.get("labels"), get_kind(metrics.get("kind"))
    if not labels:
        return task
    count = f"{len(labels)} {kind.output_noun}"
    return f"{task} ({kind.name}, {count})" if metrics.get("kind") else f"{task} ({count})"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
