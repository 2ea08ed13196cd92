"""`make demo`: the main job on the built-in model and real data.

Trains one all-MiniLM-L6-v2 encoder with two heads, Jeopardy! topic (40 classes) and
Rotten Tomatoes sentiment, on subsets of both (configs/topic_sentiment_quick.yaml, about
5 minutes on 2 CPU cores), then prints per-task test metrics, a few predictions, and
the encoder's similarity score on `lee` before and after training.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

from .encoder import SentenceEncoder, TruncationWarning
from .metrics import format_metrics_table
from .model import load
from .similarity import evaluate_similarity
from .training import load_config, train

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "topic_sentiment_quick.yaml"
EXAMPLES = [
    "A tender, funny and beautifully acted film that stays with you.",
    "Two hours of my life I will never get back.",
    "This river flows through Vienna, Budapest and Belgrade before reaching the Black Sea.",
    "He wrote 'The Old Man and the Sea' and won the Nobel Prize in 1954.",
    "This element, atomic number 79, has the chemical symbol Au.",
]


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
    print("\ntest metrics of the best model:")
    print(format_metrics_table(result.test_metrics))

    model = load(result.model_dir)
    print("\npredictions:")
    for text, prediction in zip(EXAMPLES, model.predict(EXAMPLES)):
        labels = ", ".join(f"{task}={p.label} ({p.probability:.2f})" for task, p in prediction.items())
        print(f"  {text[:70]:<70}  {labels}")

    before = evaluate_similarity(SentenceEncoder())
    after = evaluate_similarity(model.encoder)
    print(f"\nlee similarity (Spearman) of the encoder: {before.spearman:.4f} before training, {after.spearman:.4f} after")
    print(f"\nreport: {result.run_dir / 'report.md'}   model: {result.model_dir}")
    print(f"try:    .venv/bin/polyhead predict {result.model_dir} \"an unforgettable performance\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
