"""The study report: one markdown table (a row per strategy) and one PNG."""

from __future__ import annotations

import io
from pathlib import Path

from ..fileio import atomic_file


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def _table(results: dict) -> str:
    tasks = results["tasks"]
    before = results["lee_spearman_before"]
    header = ["strategy", *[f"{t} acc" for t in tasks], *[f"{t} macro-F1" for t in tasks], "trainable params", "time (s)", "lee ρ after", "forgetting"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in results["rows"]:
        after = row.get("lee_spearman_after")
        cells = [f"`{row['strategy']}`"]
        cells += [_fmt(row["tasks"][t]["accuracy"]) if t in row["tasks"] else "–" for t in tasks]
        cells += [_fmt(row["tasks"][t]["macro_f1"]) if t in row["tasks"] else "–" for t in tasks]
        cells += [f"{row['trainable_parameters']:,}", f"{row['training_time_s']:.0f}", _fmt(after), _fmt(None if after is None else before - after, "+.3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def winners(results: dict) -> dict[str, dict]:
    """Per task, the row with the best test macro-F1."""
    best = {}
    for task in results["tasks"]:
        rows = [r for r in results["rows"] if task in r["tasks"]]
        best[task] = max(rows, key=lambda r: r["tasks"][task]["macro_f1"])
    return best


def summary_lines(results: dict) -> list[str]:
    before = results["lee_spearman_before"]
    lines = []
    for task, row in winners(results).items():
        after = row.get("lee_spearman_after")
        forgetting = "" if after is None else f", forgetting {before - after:+.3f} lee ρ"
        lines.append(
            f"- **{task}**: `{row['strategy']}` wins with macro-F1 {row['tasks'][task]['macro_f1']:.3f} "
            f"(accuracy {row['tasks'][task]['accuracy']:.3f}; {row['trainable_parameters']:,} trainable parameters, "
            f"{row['training_time_s']:.0f}s{forgetting})"
        )
    return lines


def _plot(results: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, tasks = results["rows"], results["tasks"]
    names = [r["strategy"] for r in rows]
    figure = Figure(figsize=(max(8, 1.1 * len(rows)), 7.5))
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, gridspec_kw={"height_ratios": [3, 2]})
    width = 0.8 / max(1, len(tasks))
    for i, task in enumerate(tasks):
        values = [r["tasks"][task]["macro_f1"] if task in r["tasks"] else 0.0 for r in rows]
        top.bar([x + i * width for x in range(len(rows))], values, width=width, label=task)
    top.set_xticks([x + width * (len(tasks) - 1) / 2 for x in range(len(rows))], names, rotation=25, ha="right", fontsize=8)
    top.set_ylabel("test macro-F1")
    top.set_title(f"{results['budget_steps']} steps per strategy, seed {results['seed']}")
    top.legend()
    before = results["lee_spearman_before"]
    forgetting = [before - r["lee_spearman_after"] if r.get("lee_spearman_after") is not None else 0.0 for r in rows]
    bottom.bar(range(len(rows)), forgetting, color="tab:red")
    bottom.axhline(0, color="black", linewidth=0.8)
    bottom.set_xticks(range(len(rows)), names, rotation=25, ha="right", fontsize=8)
    bottom.set_ylabel("forgetting\n(lee ρ before − after)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    with atomic_file(path, "wb") as handle:
        handle.write(buffer.getvalue())


def write_study_report(results: dict, study_dir: Path, command: str) -> Path:
    """study_dir/study.md and study.png."""
    _plot(results, study_dir / "study.png")
    text = "\n".join([
        "# Training strategy study",
        "",
        f"Reproduce: `{command}`",
        "",
        f"Every strategy trains the same tasks ({', '.join(results['tasks'])}) for {results['budget_steps']} steps "
        f"of {results['batch_size']} examples with seed {results['seed']}; metrics are on each task's test split. "
        f"*Forgetting* is the drop of the encoder's Spearman ρ on `lee` (human similarity ratings) from "
        f"{results['lee_spearman_before']:.3f} before training. Time includes the periodic validation.",
        "",
        _table(results),
        "",
        "## Which strategy wins",
        "",
        *summary_lines(results),
        "",
        "![study](study.png)",
        "",
    ])
    path = study_dir / "study.md"
    with atomic_file(path) as handle:
        handle.write(text)
    return path
