"""What a per-task adapter costs at inference: predict on a model whose new task runs through its own LoRA adapter.

    .venv/bin/python benchmarks/adapter_routing.py                    # 2,000 real reviews, 3 rounds
    .venv/bin/python benchmarks/adapter_routing.py --texts 500 --rounds 1

The anchor, measured in the same run on the same texts: the same model (the built-in
all-MiniLM-L6-v2 with topic, sentiment and subjectivity heads) with every task on the shared
encoder, as `protect.strategy` isolate, rehearsal or distillation leave it. Then the new task
gets its own adapter (rank 8, in every linear layer of the blocks, as `protect.strategy
adapter` trains it): a request for every task costs one encoder pass for the old tasks and one
for the new one. Each group runs on its own plain copy of the encoder (the adapter merged into
the weights), so both passes take the fast paths (bf16 twin, ONNX) and no adapter products;
the price is one backbone copy in memory per group. Printed as throughput ratios against the
anchor; each figure is the best of `--rounds`.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="real reviews to predict (default: 2,000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per setting; the best counts (default: 3)")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args(argv)


def best_rate(predict, texts: list[str], rounds: int) -> float:
    predict(texts[:64])  # warm-up: backends build what they cache
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        predict(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from polyhead import datasets
    from polyhead.encoder import SentenceEncoder
    from polyhead.head_config import HeadConfig
    from polyhead.model import MultiTaskModel
    from polyhead.task_spec import TaskSpec

    texts = list(datasets.get("rotten_tomatoes:sentiment").train.texts[: args.texts])
    specs = [TaskSpec("topic", [f"t{i}" for i in range(40)], HeadConfig(hidden_sizes=[192])),
             TaskSpec("sentiment", ["fresh", "rotten"], HeadConfig(hidden_sizes=[192])),
             TaskSpec("subjectivity", ["plot", "review"], HeadConfig(hidden_sizes=[192]))]
    model = MultiTaskModel(SentenceEncoder(None, max_seq_length=128), specs)
    rows = []
    anchor = best_rate(lambda t: model.predict(t, batch_size=args.batch_size), texts, args.rounds)
    rows.append(("every task on the shared encoder (anchor)", anchor, model.encoder.last_encode_stats.backend))
    model.add_task_adapter("subjectivity")
    adapted = lambda: f"{model.group_encoder('subjectivity').last_encode_stats.backend}, adapter merged"  # noqa: E731
    rows.append(("subjectivity through its adapter, all tasks", best_rate(lambda t: model.predict(t, batch_size=args.batch_size),
                                                                           texts, args.rounds), adapted()))
    rows.append(("old tasks only (no adapter pass)", best_rate(lambda t: model.predict(t, tasks=["topic", "sentiment"],
                                                                                       batch_size=args.batch_size), texts, args.rounds),
                 model.group_encoder(None).last_encode_stats.backend))
    rows.append(("subjectivity only (adapter pass)", best_rate(lambda t: model.predict(t, tasks=["subjectivity"],
                                                                                       batch_size=args.batch_size), texts, args.rounds),
                 adapted()))
    print(f"{len(texts)} texts, batch size {args.batch_size}, best of {args.rounds}")
    print(f"{'setting':<46} {'texts/s':>9} {'vs anchor':>10}  encoder path")
    for name, rate, path in rows:
        print(f"{name:<46} {rate:9.1f} {rate / anchor:9.2f}x  {path}")


if __name__ == "__main__":
    main()
