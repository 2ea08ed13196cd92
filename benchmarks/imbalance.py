"""Class weights and balanced sampling on imbalanced built-in data, several seeds, spread shown.

Two studies (each a resumable `polyhead study`; re-running the command continues it):

- sentiment: Rotten Tomatoes sentiment with `rotten` cut to 10% of the training and validation
  splits (a 13.7x imbalance), the full test split; `full` against `class_weights` and
  `balanced_sampling`, plus logistic regression on the frozen encoder.
- disaster: the built-in multi-label `disaster_response` (34 labels, from 99 to 15,794
  positives in training), a fixed 4,000-text training slice, full validation and test splits;
  `full` against `class_weights`.

Prints test macro-F1 (and the small class's recall) per strategy as mean ± std over seeds, and
each option against `full` as a beat or a tie (two standard errors of the difference).

    .venv/bin/python benchmarks/imbalance.py --part sentiment --seeds 3 --out runs/imbalance
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEEP_SHARE = 0.10
SMALL_CLASS = "rotten"
STRATEGIES = {"sentiment": "full,class_weights,balanced_sampling", "disaster": "full,class_weights"}


def write_cut_sentiment(folder: Path, seed: int = 0) -> dict[str, str]:
    """Rotten Tomatoes sentiment as CSV files, `rotten` cut to KEEP_SHARE in train and validation (test kept whole)."""
    from polyhead import datasets

    data = datasets.get("rotten_tomatoes:sentiment")
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, rows in data.splits.items():
        pairs = list(zip(rows.texts, rows.labels))
        if split != "test":
            small = [p for p in pairs if p[1] == SMALL_CLASS]
            random.Random(f"{seed}:{split}").shuffle(small)
            kept = set(map(id, small[: round(KEEP_SHARE * len(small))]))
            pairs = [p for p in pairs if p[1] != SMALL_CLASS or id(p) in kept]
        path = folder / f"{split}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(pairs)
        files[split] = str(path.resolve())
    return files


def config_text(part: str, data_dir: Path) -> str:
    common = ("model: {name: null, pooling: mean, normalize: true, max_seq_length: 64}\n"
              "training: {seed: 42, batch_size: 32, learning_rate: 5.0e-5, head_learning_rate: 1.0e-2, eval_batch_size: 128}\n")
    if part == "sentiment":
        files = write_cut_sentiment(data_dir)
        task = (f"  sentiment:\n    data: {{train: {files['train']}, validation: {files['validation']}, test: {files['test']}}}\n"
                "    head: {hidden_sizes: [192], dropout: 0.1}\n")
    else:
        task = "  disaster:\n    data: disaster_response\n    max_train_examples: 4000\n    head: {hidden_sizes: [192], dropout: 0.1}\n"
    return f"# {part}: see benchmarks/imbalance.py\n{common}tasks:\n{task}"


def small_recall(run_dir: Path, task: str) -> float | None:
    path = run_dir / "test_metrics.json"
    if not path.is_file():
        return None
    per_class = json.loads(path.read_text(encoding="utf-8"))["tasks"][task].get("per_class", {})
    return per_class.get(SMALL_CLASS, {}).get("recall")


def summarize(study_dir: Path, task: str) -> list[str]:
    from polyhead.study.report import compare, stat, strategy_names
    from polyhead.study.runner import run_dir_of

    results = json.loads((study_dir / "results.json").read_text(encoding="utf-8"))
    lines = [f"{task}: test macro-F1, mean ± std over seeds (full test split)"]
    for name in strategy_names(results):
        rows = [r for r in results["runs"] if r["strategy"] == name and task in r["tasks"]]
        f1 = stat([r["tasks"][task]["macro_f1"] for r in rows])
        recalls = [small_recall(run_dir_of(study_dir, name, r["seed"]), task) for r in rows if r["seed"] is not None]
        recall = stat([r for r in recalls if r is not None])
        extra = f"   {SMALL_CLASS} recall {recall}" if recall is not None else ""
        trained = [r.get("epochs_trained") for r in rows if r.get("epochs_trained") is not None]
        epochs = f"   epochs {min(trained):.1f}-{max(trained):.1f}" if trained else ""
        lines.append(f"  {name:<20} n={len(rows)}  macro-F1 {f1}{extra}{epochs}")
    for name in strategy_names(results):
        if name != "full":
            comparison = compare(results, name, "full", task, "macro_f1")
            if comparison is not None:
                lines.append(f"  {name} against full: {comparison.verdict()}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("sentiment", "disaster", "all"), default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=2.0, help="most epochs per run (the study's budget, with early stopping)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "imbalance")
    parser.add_argument("--summary-only", action="store_true", help="print the summary of what has run so far")
    args = parser.parse_args()
    parts = ["sentiment", "disaster"] if args.part == "all" else [args.part]
    for part in parts:
        study_dir = args.out / part
        if not args.summary_only:
            config = args.out / f"{part}.yaml"
            args.out.mkdir(parents=True, exist_ok=True)
            config.write_text(config_text(part, args.out / "data"), encoding="utf-8")
            command = [sys.executable, "-m", "polyhead", "study", str(config), "--strategies", STRATEGIES[part],
                       "--seeds", str(args.seeds), "--epochs", str(args.epochs), "-o", str(study_dir), "--no-progress"]
            if part == "disaster":
                command.append("--no-baseline")  # logistic regression is a one-class-per-text baseline
            if subprocess.run(command, cwd=REPO).returncode != 0:
                return 1
        print("\n".join(summarize(study_dir, part)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
