"""The study report: mean ± standard deviation over seeds, winners only beyond the noise, one PNG.

A difference between two strategies counts only when it is larger than two standard errors
of the difference of their means, sqrt(s_a^2/n_a + s_b^2/n_b); otherwise it is a tie.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from ..fileio import atomic_file
from .runner import BASELINE
from .strategies import OWN_BUDGET

DEFAULT_STRATEGY = "full"
"""The study strategy that matches what `polyhead train` does when a config says nothing."""
NOISE_FACTOR = 2.0


@dataclass
class Stat:
    mean: float
    std: float
    n: int

    @property
    def standard_error(self) -> float:
        return self.std / math.sqrt(self.n) if self.n > 1 else 0.0

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f}" if self.n > 1 else f"{self.mean:.3f}"


def stat(values: list[float]) -> Stat | None:
    if not values:
        return None
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return Stat(mean, math.sqrt(var), len(values))


@dataclass
class Comparison:
    a: str
    b: str
    difference: float
    """Mean of a minus mean of b."""
    noise: float
    """Two standard errors of the difference."""
    decided: bool
    """Both sides have several seeds (or are deterministic) and the difference exceeds the noise."""
    measurable: bool = True
    """Both sides have several seeds or are deterministic, so the noise is known."""

    def verdict(self) -> str:
        if not self.measurable:
            return f"undecided ({self.difference * 100:+.1f} pt from one seed: no noise estimate yet)"
        if not self.decided:
            return f"tie ({self.difference * 100:+.1f} pt, noise ±{self.noise * 100:.1f} pt)"
        word = "beats" if self.difference > 0 else "loses to"
        return f"{word} ({self.difference * 100:+.1f} pt, noise ±{self.noise * 100:.1f} pt)"


def _runs(results: dict, strategy: str) -> list[dict]:
    return [r for r in results["runs"] if r["strategy"] == strategy]


def strategy_names(results: dict) -> list[str]:
    names = []
    for row in results["runs"]:
        if row["strategy"] not in names:
            names.append(row["strategy"])
    return names


def task_stat(results: dict, strategy: str, task: str, metric: str = "score") -> Stat | None:
    """`score` is the task kind's selection metric (macro-F1 for classification; rows written before kinds have macro_f1)."""
    values = [_metric(r["tasks"][task], metric) for r in _runs(results, strategy) if task in r["tasks"]]
    return stat([v for v in values if v is not None])


def _metric(metrics: dict, metric: str) -> float | None:
    if metric == "score" and "score" not in metrics:
        return metrics.get("macro_f1")
    return metrics.get(metric)


def score_name(results: dict, task: str) -> str:
    """The header of a task's score: its kind's selection metric (macro-F1 for classification)."""
    from ..tasks import get_kind

    kinds = [r["tasks"][task].get("kind") for r in results["runs"] if task in r["tasks"]]
    kind = get_kind(kinds[0] if kinds else None)
    return dict(kind.table_metrics).get(kind.score_metric, kind.score_metric)


def _deterministic(results: dict, strategy: str) -> bool:
    return all(r["seed"] is None for r in _runs(results, strategy))


def compare(results: dict, a: str, b: str, task: str, metric: str = "score") -> Comparison | None:
    sa, sb = task_stat(results, a, task, metric), task_stat(results, b, task, metric)
    if sa is None or sb is None:
        return None
    noise = NOISE_FACTOR * math.sqrt(sa.standard_error**2 + sb.standard_error**2)
    enough = (sa.n > 1 or _deterministic(results, a)) and (sb.n > 1 or _deterministic(results, b))
    difference = sa.mean - sb.mean
    return Comparison(a, b, difference, noise, enough and abs(difference) > noise, enough)


def winner_line(results: dict, task: str) -> str:
    """The best mean, and whether it beats every other strategy beyond the noise."""
    names = [n for n in strategy_names(results) if task_stat(results, n, task)]
    if not names:
        return f"- **{task}**: no run has measured it yet."
    best = max(names, key=lambda n: task_stat(results, n, task).mean)  # type: ignore[union-attr]
    tied = [n for n in names if n != best and not compare(results, best, n, task).decided]  # type: ignore[union-attr]
    s, metric = task_stat(results, best, task), score_name(results, task)
    if s.n < 2 and not _deterministic(results, best):
        return f"- **{task}**: best mean so far `{best}` ({metric} {s}); no winner is named before every strategy has several seeds."
    if not tied:
        return f"- **{task}**: `{best}` wins with {metric} {s}, beyond the noise against every other strategy."
    return (f"- **{task}**: best mean `{best}` ({metric} {s}), **tied** within the noise with "
            + ", ".join(f"`{n}` ({task_stat(results, n, task)})" for n in tied) + ".")


def _forgetting(results: dict, strategy: str) -> Stat | None:
    before = results["lee_spearman_before"]
    return stat([before - r["lee_spearman_after"] for r in _runs(results, strategy) if r.get("lee_spearman_after") is not None])


def _mean(results: dict, strategy: str, key: str) -> float | None:
    values = [r[key] for r in _runs(results, strategy) if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def _table(results: dict) -> str:
    tasks = results["tasks"]
    with_accuracy = [t for t in tasks if task_stat(results, DEFAULT_STRATEGY, t, "accuracy") or any(
        task_stat(results, n, t, "accuracy") for n in strategy_names(results))]
    header = ["strategy", "seeds", *[f"{t} {score_name(results, t)}" for t in tasks], *[f"{t} accuracy" for t in with_accuracy],
              "best val. (epoch)", "epochs trained", "wall s", "CPU s", "examples seen", "trainable params", "forgetting (lee ρ)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in strategy_names(results):
        rows = _runs(results, name)
        cells = [f"`{name}`", "det." if _deterministic(results, name) else str(len(rows))]
        cells += [str(task_stat(results, name, t) or "–") for t in tasks]
        cells += [str(task_stat(results, name, t, "accuracy") or "–") for t in with_accuracy]
        best, epoch = _mean(results, name, "best_validation"), _mean(results, name, "best_epoch")
        at_end = any(r.get("best_step") is not None and r["best_step"] == r.get("steps") and r.get("stop_reason", "").startswith(("max_steps", "max_epochs"))
                     for r in rows)
        mark = " †" if at_end else ""
        cells.append("–" if best is None else f"{best:.3f} ({epoch:.1f}){mark}" if epoch is not None else f"{best:.3f}{mark}")
        trained = [r["epochs_trained"] for r in rows if r.get("epochs_trained") is not None]
        cells.append(f"{min(trained):.1f}–{max(trained):.1f}" if len(set(trained)) > 1 else f"{trained[0]:.1f}" if trained else "–")
        wall, cpu = _mean(results, name, "wall_s"), _mean(results, name, "cpu_s")
        cells += [f"{wall:.0f}" if wall is not None else "–", f"{cpu:.0f}" if cpu is not None else "–"]
        seen = [sum(r["examples_seen"].values()) for r in rows]
        cells.append(f"{sum(seen) / len(seen):,.0f}" if seen else "–")
        cells.append(f"{rows[0]['trainable_parameters']:,}")
        forgetting = _forgetting(results, name)
        cells.append("–" if forgetting is None else f"{forgetting.mean:+.3f}" + (f" ± {forgetting.std:.3f}" if forgetting.n > 1 else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_lines(results: dict) -> list[str]:
    """The questions users ask: does the default beat the baselines, does joint training help."""
    lines = []
    strategies = strategy_names(results)
    for task in results["tasks"]:
        single = f"single_task:{task}"
        if DEFAULT_STRATEGY in strategies and single in strategies:
            c = compare(results, DEFAULT_STRATEGY, single, task)
            if c:
                effect = ("helps" if c.difference > 0 else "hurts") if c.decided else \
                    "neither helps nor hurts (a tie)" if c.measurable else "is not decided yet"
                lines.append(f"- **{task}**: joint training with the other tasks {effect}: `{DEFAULT_STRATEGY}` {c.verdict()} "
                             f"against `{single}` on test {score_name(results, task)}.")
        if DEFAULT_STRATEGY in strategies and BASELINE in strategies:
            c = compare(results, DEFAULT_STRATEGY, BASELINE, task)
            if c:
                lines.append(f"- **{task}**: `{DEFAULT_STRATEGY}` {c.verdict()} against `{BASELINE}` on test {score_name(results, task)}.")
    return lines


def _plot(results: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks, names = results["tasks"], strategy_names(results)
    panels = [*tasks, "forgetting"]
    figure = Figure(figsize=(6.5 * len(panels), 5.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    for ax, panel in zip(axes, panels):
        for name in names:
            s = _forgetting(results, name) if panel == "forgetting" else task_stat(results, name, panel)
            wall = _mean(results, name, "wall_s")
            if s is None or wall is None:
                continue
            ax.errorbar([max(wall, 1.0)], [s.mean], yerr=[s.std], fmt="o", color=colors[name], capsize=4)
            ax.annotate(name, (max(wall, 1.0), s.mean), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("wall time per run (s, log scale)")
        ax.set_ylabel("lee ρ before − after" if panel == "forgetting" else f"test {score_name(results, panel)}")
        ax.set_title("forgetting (lower is better)" if panel == "forgetting" else f"{panel}: mean ± std over seeds")
        ax.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    with atomic_file(path, "wb") as handle:
        handle.write(buffer.getvalue())


NOTES_FILE = "notes.md"
"""Hand-written remarks on a study's runs (e.g. a pause that a run's wall time includes), kept in the report."""


def _notes(study_dir: Path) -> list[str]:
    path = study_dir / NOTES_FILE
    if not path.is_file():
        return []
    return ["## Notes on these runs", "", path.read_text(encoding="utf-8").strip(), ""]


def write_study_report(results: dict, study_dir: Path, command: str = "") -> Path:
    """study_dir/study.md and study.png."""
    _plot(results, study_dir / "study.png")
    budget = results["budget"]
    seeds = results["seeds"]
    wanted = {(s["name"], seed) for s in results["strategies"] for seed in seeds}
    finished = {(r["strategy"], r["seed"]) for r in results["runs"]}
    missing = len(wanted - finished)
    total_wall = sum(r["wall_s"] for r in results["runs"])
    sizes = ", ".join(f"{t} {n:,}" for t, n in results["train_examples"].items())
    own = [s["name"] for s in results["strategies"] if OWN_BUDGET in s.get("tags", [])]
    text = "\n".join([
        "# Training strategy study",
        "",
        f"Reproduce: `{command or results.get('command', '')}`",
        "",
        (f"**Incomplete: {missing} of {len(wanted)} runs still to go**; re-running the command continues the study. "
         if missing else "") + f"Training time of the runs {'so far' if missing else f'(all {len(wanted)})'}: {total_wall / 3600:.1f} h.",
        "",
        f"Tasks: {', '.join(results['tasks'])}; training examples: {sizes}; batch size {results['batch_size']}, "
        f"max_seq_length {results['max_seq_length']}; seeds {', '.join(map(str, seeds))}. Each strategy trains up to "
        f"{budget['epochs']:g} epochs (heads-only strategies up to {budget['probe_epochs']:g}), validated "
        f"{budget['evals_per_epoch']:g}× per epoch (heads-only: once), and stops after {budget['patience']} validations "
        "without improvement of the mean validation score (each task's own selection metric: macro-F1 for "
        "classification); the best validation point is the model tested"
        + ("" if not own else f" ({', '.join(f'`{n}`' for n in own)} follows the trainer's own `epochs: auto` rule instead)")
        + ". Metrics are on each task's **full test split**, mean ± standard deviation over seeds. "
        f"*Forgetting* is the drop of the encoder's Spearman ρ on `lee` (human similarity ratings) from "
        f"{results['lee_spearman_before']:.3f} before training. A difference is called only when it exceeds two "
        "standard errors of the difference of the means; otherwise it is a tie. Wall time includes validation; "
        "LP-FT's includes its frozen-encoder stage. CPU seconds count every thread of the process.",
        "",
        _table(results),
        "",
        "† the best validation point of at least one seed was the budget's last step: that strategy was still "
        "improving when its budget ended.",
        "",
        "## Which strategy wins",
        "",
        *[winner_line(results, task) for task in results["tasks"]],
        "",
        "## The default against the baselines, and joint against single-task training",
        "",
        *comparison_lines(results),
        "",
        "![study](study.png)",
        "",
        *_notes(study_dir),
        "## The strategies",
        "",
        *[f"- `{s['name']}`: {s['description']}" for s in results["strategies"]],
        *([f"- `{BASELINE}`: deterministic, run once."] if any(r["strategy"] == BASELINE for r in results["runs"]) else []),
        "",
    ])
    path = study_dir / "study.md"
    with atomic_file(path) as handle:
        handle.write(text)
    return path
