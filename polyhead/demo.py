"""`make demo`: the main job on the built-in model and real data.

Trains one all-MiniLM-L6-v2 encoder with two heads, Jeopardy! topic (40 classes) and
Rotten Tomatoes sentiment, on 4,000 training examples of each (configs/topic_sentiment_quick.yaml),
then prints per-task metrics on the full test splits, a few predictions checked against the
label a reader would give, the test examples it got most confidently wrong, and the encoder's
similarity score on `lee` before and after training.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

from .encoder import SentenceEncoder, TruncationWarning
from .tasks.tables import format_metrics_table
from .model import load
from .similarity import evaluate_similarity
from .training import load_config, train

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "topic_sentiment_quick.yaml"
EXAMPLES: list[tuple[str, dict[str, str]]] = [
    ("A tender, funny and beautifully acted film that stays with you.", {"sentiment": "fresh"}),
    ("A dull, lifeless script that wastes a talented cast.", {"sentiment": "rotten"}),
    ("Boring, predictable and far too long.", {"sentiment": "rotten"}),
    ("This river flows through Vienna, Budapest and Belgrade before reaching the Black Sea.", {}),
    ("He wrote 'The Old Man and the Sea' and won the Nobel Prize in 1954.", {}),
    ("This element, atomic number 79, has the chemical symbol Au.", {}),
]
"""Plain showcase texts with the sentiment a reader would give them (topic labels are left to the model)."""

HARDER_EXAMPLES: list[tuple[str, dict[str, str]]] = [
    ("Two hours of my life I will never get back.", {"sentiment": "rotten"}),
]
"""Reviews whose sentiment carries no sentiment word (an idiom): shown apart, as what a small model may still miss."""


def main(argv: list[str] | None = None) -> int:
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    disable_progress_bars()
    warnings.simplefilter("ignore", TruncationWarning)
    config = load_config(CONFIG, list(argv if argv is not None else sys.argv[1:]))
    shutil.rmtree(config.output_dir, ignore_errors=True)  # the demo's own run directory
    print(f"training {', '.join(config.tasks)} jointly ({CONFIG.name}) into {config.output_dir}\n")
    result = train(config)
    print(f"\n{result.steps} steps in {result.elapsed_s:.0f}s; best validation step {result.best_step}")
    sizes = ", ".join(f"{name} {size:,}" for name, size in _test_sizes(result.test_metrics).items())
    subsets = any(task.max_eval_examples for task in config.tasks.values())
    print(f"\ntest metrics of the best model ({'SUBSETS of the test splits' if subsets else 'full test splits'}: {sizes} texts):")
    print(format_metrics_table(result.test_metrics))

    model = load(result.model_dir)
    print("\npredictions (✓/✗: against the label a reader would give):")
    _show_predictions(model, EXAMPLES)
    print("harder: an idiom, no sentiment word")
    _show_predictions(model, HARDER_EXAMPLES)

    _show_worst_errors(model, result.run_dir, max(t.max_eval_examples or 0 for t in config.tasks.values()) or None)

    before = evaluate_similarity(SentenceEncoder())
    after = evaluate_similarity(model.encoder)
    print(f"\nlee similarity (Spearman) of the encoder: {before.spearman:.4f} before training, {after.spearman:.4f} after")
    print(f"\nreport: {result.run_dir / 'report.md'}   model: {result.model_dir}")
    print(f"try:    .venv/bin/polyhead predict {result.model_dir} \"an unforgettable performance\"")
    return 0


def _show_predictions(model, examples: list[tuple[str, dict[str, str]]]) -> None:
    for (text, expected), prediction in zip(examples, model.predict([text for text, _ in examples])):
        labels = ", ".join(f"{task}={p.label} ({p.probability:.2f}){_mark(expected.get(task), p.label)}" for task, p in prediction.items())
        print(f"  {text[:70]:<70}  {labels}")


def _show_worst_errors(model, run_dir: Path, max_examples: int | None) -> None:
    """The test examples the model got most confidently wrong, per task; all of them in RUN_DIR/errors_test.csv."""
    from .prediction_errors import find_errors, worst_lines, write_errors
    from .training.saved_data import task_data_for_model

    errors = find_errors(model, task_data_for_model(model, "test", max_examples), "test", batch_size=128)
    path = run_dir / "errors_test.csv"
    write_errors(path, errors)
    print(f"\nworst errors on the test splits (the most confident wrong answers; all {len(errors):,} in {path}):")
    print("\n".join(worst_lines(errors)))


def _test_sizes(metrics: dict[str, dict]) -> dict[str, int]:
    return {task: int(m.get("support", 0)) for task, m in metrics.items()}


def _mark(expected: str | None, predicted: str) -> str:
    return "" if expected is None else " ✓" if expected == predicted else f" ✗ (expected {expected})"


if __name__ == "__main__":
    sys.exit(main())
