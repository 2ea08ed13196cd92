"""Encoding speed on a GPU: sentence-transformers at its default and its best batch size against every
polyhead backend that runs there and polyhead's default (`auto`), one process, alternated.

    python benchmarks/encode_speed.py --device cuda        # runs this module
    python benchmarks/encode_speed_gpu.py --device cuda --texts 60000    # gpu_check.sh: --texts 20000 --repeats 2

Texts: every Rotten Tomatoes review and Jeopardy! question of the built-in datasets, cycled to
--texts (default 60,000). The built-in all-MiniLM-L6-v2 on both sides. Protocol:

1. Warm-up: every side encodes the whole corpus once (CUDA loads kernels lazily and some attention
   backends plan per shape; polyhead's `auto` makes its probe here, reported).
2. Batch sweep of sentence-transformers (--st-batches) on a quarter of the texts, one warm and
   one timed run each: its best batch is then timed in the main rounds beside its default (32).
3. --repeats rounds; in each, every side encodes all texts once, in the same order. Medians of
   texts/s per side, and each side's ratio to sentence-transformers at its default and at its best
   (median over rounds of the in-round ratio, so drift affects both sides of a ratio alike).
4. min / mean cosine of each side's vectors to sentence-transformers fp32 at batch 32.

Every clock read follows `torch.cuda.synchronize()`. Also printed: the tokenizer alone on all
texts in one call (the CPU-side limit), and polyhead's token budget swept on the fastest backend.
It runs on a CPU too (`--device cpu`, small --texts), which is how its mechanics are tested.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_figures import print_table, version  # noqa: E402

POLYHEAD_PATHS = ("auto", "torch", "torch-bf16")
"""polyhead's backends that run on a GPU (the ONNX Runtime graphs here run on the CPU)."""
ST_DEFAULT_BATCH = 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (default: cuda)")
    parser.add_argument("--texts", type=int, default=60_000, help="texts per run, real ones cycled (default: 60000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (default: 3)")
    parser.add_argument("--st-batches", default="32,128,256,512,1024", help="sentence-transformers batch sizes swept")
    parser.add_argument("--budgets", default="8192,32768,131072", help="polyhead token budgets swept on its fastest backend ('' to skip)")
    parser.add_argument("--paths", default=",".join(POLYHEAD_PATHS), help="polyhead backends to time")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    if args.texts < 1 or args.repeats < 1:
        parser.error("--texts and --repeats must be positive")
    return args


def corpus(count: int) -> list[str]:
    """Rotten Tomatoes reviews and Jeopardy! questions (all splits), interleaved, cycled to `count`."""
    from polyhead.datasets import jeopardy, rotten_tomatoes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pools = []
        for dataset in (rotten_tomatoes("sentiment"), jeopardy()):
            pools.append([t for split in (dataset.train, dataset.validation, dataset.test) for t in split.texts if t.strip()])
    mixed = [text for pair in zip(*pools) for text in pair]
    longer = max(pools, key=len)
    mixed += longer[min(len(p) for p in pools):]
    return [mixed[i % len(mixed)] for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from polyhead import SentenceEncoder
    from polyhead.assets import default_model_path
    from polyhead.inference.auto_probe import device_timer
    from polyhead.inference.device_pipeline import PipelineOptions
    from polyhead.similarity import row_cosines

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=UserWarning)
    device = torch.device(args.device)
    timer = device_timer(device.type)
    texts = corpus(args.texts)
    st = SentenceTransformer(str(default_model_path()), device=str(device))
    encoder = SentenceEncoder(device=device)
    names = [n.strip() for n in args.paths.split(",") if n.strip()]
    st_batches = [int(b) for b in args.st_batches.split(",") if b.strip()]
    tokens = int(encoder.text_tokenizer.tokenize(texts).lengths.sum())

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"device: {gpu}; python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"transformers {version('transformers')}, sentence-transformers {version('sentence-transformers')}")
    print(f"texts: {len(texts)} (Rotten Tomatoes + Jeopardy!, cycled), {tokens} tokens ({tokens / len(texts):.1f}/text)")

    start = time.perf_counter()
    encoder.text_tokenizer.tokenize(texts)
    tokenize_s = time.perf_counter() - start
    print(f"tokenizer alone, one call on all texts: {len(texts) / tokenize_s:,.0f} texts/s")
    payload: dict = {"device": gpu, "texts": len(texts), "tokens": tokens, "tokenizer_texts_per_s": len(texts) / tokenize_s,
                     "torch": torch.__version__, "complete": False}

    def save(**figures) -> None:
        """Rewrite --json with every figure so far: a run cut short by a timeout keeps the parts that finished."""
        payload.update(figures)
        if args.json:
            args.json.write_text(json.dumps(payload, indent=2))

    save()

    def st_side(batch: int):
        return lambda items: st.encode(items, batch_size=batch, show_progress_bar=False, convert_to_numpy=True)

    def polyhead_side(name: str):
        return lambda items: encoder.encode(items, backend=name, show_progress=False)

    # 1. warm-up (and auto's probe)
    reference = st_side(ST_DEFAULT_BATCH)(texts)
    for name in names:
        polyhead_side(name)(texts)
    probe = encoder._runners.last_probe
    if probe is not None:
        print(f"auto's probe: chose {probe.choice}; seconds {probe.seconds}; min cosine to fp32 {probe.min_cosine}")
    save(auto_probe=None if probe is None else {"choice": probe.choice, "seconds": probe.seconds, "min_cosine": probe.min_cosine})

    # 2. sentence-transformers batch sweep
    quarter = texts[: max(1, len(texts) // 4)]
    sweep = {}
    for batch in st_batches:
        st_side(batch)(quarter)
        begin = timer()
        st_side(batch)(quarter)
        sweep[batch] = len(quarter) / (timer() - begin)
    best_batch = max(sweep, key=sweep.get)
    print("sentence-transformers batch sweep (texts/s on a quarter): " + ", ".join(f"{b}: {r:,.0f}" for b, r in sweep.items())
          + f"; best {best_batch}")
    sides = {f"sentence-transformers b{ST_DEFAULT_BATCH}": st_side(ST_DEFAULT_BATCH)}
    if best_batch != ST_DEFAULT_BATCH:
        st_side(best_batch)(texts)  # warm every shape of the full corpus at this batch
        sides[f"sentence-transformers b{best_batch}"] = st_side(best_batch)
    sides.update({f"polyhead {name}": polyhead_side(name) for name in names})
    default_label, best_label = f"sentence-transformers b{ST_DEFAULT_BATCH}", f"sentence-transformers b{best_batch}"
    save(st_sweep=sweep, st_best_batch=best_batch)

    # 3. alternated rounds
    seconds: dict[str, list[float]] = {label: [] for label in sides}
    vectors: dict[str, np.ndarray] = {}
    for round_index in range(args.repeats):
        line = []
        for label, encode in sides.items():
            begin = timer()
            vectors[label] = encode(texts)
            seconds[label].append(timer() - begin)
            line.append(f"{label} {len(texts) / seconds[label][-1]:,.0f}/s")
        print(f"  round {round_index + 1}/{args.repeats}: " + ", ".join(line), flush=True)
        save(round_seconds=seconds)

    rows = [["side", "backend", "texts/s", "tokens/s", "x ST b32", f"x ST b{best_batch}", "min cos", "mean cos"]]
    figures = {}
    for label in sides:
        median = statistics.median(seconds[label])
        ratio_default = statistics.median(a / b for a, b in zip(seconds[default_label], seconds[label]))
        ratio_best = statistics.median(a / b for a, b in zip(seconds[best_label], seconds[label]))
        cos = row_cosines(vectors[label], reference)
        backend = "fp32"
        if label.startswith("polyhead"):
            encoder.encode(texts[:8], backend=label.split()[-1], show_progress=False)
            backend = encoder.last_encode_stats.backend
        figures[label] = {"seconds": seconds[label], "texts_per_s": len(texts) / median, "tokens_per_s": tokens / median,
                          "x_st_default": ratio_default, "x_st_best": ratio_best, "min_cosine": float(cos.min()),
                          "mean_cosine": float(cos.mean()), "backend": backend}
        rows.append([label, backend, f"{len(texts) / median:,.0f}", f"{tokens / median:,.0f}", f"{ratio_default:.2f}",
                     f"{ratio_best:.2f}", f"{cos.min():.5f}", f"{cos.mean():.6f}"])
    save(sides=figures)
    print()
    print_table(rows)

    # 4. polyhead's token budget on its fastest backend (its 'best settings')
    budgets = {}
    concrete = [n for n in names if n != "auto"]
    if args.budgets.strip() and concrete:
        fastest = max(concrete, key=lambda n: figures[f"polyhead {n}"]["texts_per_s"])
        _, runner = encoder._runners.resolve(encoder, fastest, texts[:8])
        saved = runner.pipeline
        for budget in (int(b) for b in args.budgets.split(",") if b.strip()):
            runner.pipeline = PipelineOptions(max_tokens=budget)  # on a CPU too: the GPU's path, timed there
            encoder.encode(texts, backend=fastest, show_progress=False)
            begin = timer()
            encoder.encode(texts, backend=fastest, show_progress=False)
            budgets[budget] = len(texts) / (timer() - begin)
        runner.pipeline = saved
        print(f"\npolyhead {fastest}, token budget sweep (texts/s, one run each): "
              + ", ".join(f"{b}: {r:,.0f}" for b, r in budgets.items()))
    save(budget_sweep=budgets, complete=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
