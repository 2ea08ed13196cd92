"""Encoding speed of every polyhead backend next to sentence-transformers, plus what the fast paths cost.

    .venv/bin/python benchmarks/encode_speed.py            # make bench
    .venv/bin/python benchmarks/encode_speed.py --threads 1 # per-core comparison
    .venv/bin/python benchmarks/encode_speed.py --device cuda  # runs encode_speed_gpu.py (gpu_check.sh calls it directly)

One run, one machine, the same texts: a fixed subset of the real Rotten Tomatoes reviews
(the first --texts of the sentiment train split), the built-in all-MiniLM-L6-v2, and
`SentenceTransformer(default_model_path(), device="cpu").encode` as the anchor. The anchor
runs in a process of its own (benchmarks/st_anchor.py), because polyhead changes a
process-wide setting (glibc's malloc thresholds) that sentence-transformers does not: once
as shipped, the anchor of "x ST", and once with polyhead's setting ("st+alloc", the anchor
of "x ST+alloc", showing how much of a ratio that setting is). In each round every path
encodes the texts once, anchors first; a path's ratio is the median over rounds of
(anchor time / path time) within the round, so a busy machine slows both sides of each
ratio alike. Reported per path: sentences/s and tokens/s (medians), ratios, minimum
cosine against the fp32 reference, and the share of the CPU's peak FLOP rate.

Paths: the encoder's own backends (`auto`, `torch`, `onnx`, `onnx-int8`: the calibrated
static int8 graph built in memory with the default budget, min cosine 0.99 / mean 0.998),
and exported directories run by `OnnxEncoder`: `int8-dynamic` (dynamic quantization, every
product int8) and `int8-static-loose` (static int8 searched under --loose-budget).

Then the accuracy cost of the lossy paths on real tasks: logistic regression on frozen
embeddings for Rotten Tomatoes sentiment and Jeopardy! topic (fit on --train-texts of each
train split, scored on the whole test split) and Pearson/Spearman on `lee`, each as a delta
against fp32 held to the issue's bar (accuracy within 0.5 point, Spearman within 0.01).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from polyhead.similarity import row_cosines  # noqa: E402
from machine_figures import flops_per_token, measured_clock_ghz, peak_description, print_table, version  # noqa: E402,F401

PATHS = ("auto", "torch", "onnx", "onnx-int8", "int8-dynamic", "int8-static-loose")
PRECISION = {"torch": "fp32", "torch-bf16": "bf16", "onnx": "fp32", "onnx-int8": "int8", "int8-dynamic": "int8", "int8-static-loose": "int8"}
EXPORTED_PATHS = ("int8-dynamic", "int8-static-loose")
"""Paths run from an exported directory (OnnxEncoder) rather than the encoder's own backends."""
ACCURACY_BAR = {"sentiment_accuracy": 0.005, "topic_accuracy": 0.005, "lee_spearman": 0.01}
"""Largest drop from fp32 the int8 paths may show on each task figure."""


@dataclass
class PathResult:
    """One encoding path's figures."""

    name: str
    backend: str
    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    ratios_tuned_anchor: list[float] = field(default_factory=list)
    min_cosine: float = 1.0
    max_abs_diff: float = 0.0
    sentences_per_s: float = 0.0
    tokens_per_s: float = 0.0
    ratio: float = 1.0
    ratio_tuned_anchor: float = 1.0
    peak_fraction: float = 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="Rotten Tomatoes texts to encode (default: 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of alternating runs (default: 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size for every path (default: 32, as sentence-transformers)")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"polyhead backends to time (default: {','.join(PATHS)})")
    parser.add_argument("--threads", type=int, default=None, help="cores for both sides (default: all)")
    parser.add_argument("--train-texts", type=int, default=3000, help="train texts for the sentiment probe (default: 3000)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the sentiment and lee accuracy section")
    parser.add_argument("--clock-ghz", type=float, default=None, help="clock for the peak FLOP rate (default: measured, see output)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument("--device", default="cpu", help="cpu (default), or a GPU (cuda): then benchmarks/encode_speed_gpu.py runs")
    parser.add_argument("--loose-budget", default="0.98:0.99", metavar="MIN:MEAN",
                        help="min:mean cosine budget of the int8-static-loose path (default: 0.98:0.99)")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------- timing
class Anchor:
    """sentence-transformers running in its own process (benchmarks/st_anchor.py), timed on command."""

    def __init__(self, label: str, texts: int, batch_size: int, threads: int | None, tune_allocator: bool) -> None:
        command = [sys.executable, str(Path(__file__).with_name("st_anchor.py")), "--texts", str(texts), "--batch-size", str(batch_size)]
        command += ["--threads", str(threads)] if threads else []
        command += ["--tune-allocator"] if tune_allocator else []
        self.label = label
        self.seconds: list[float] = []
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, line: str) -> str:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"{self.label} anchor process: {answer or 'exited'}")
        return answer

    def warm(self) -> None:
        self._ask("warm")

    def run(self) -> float:
        self.seconds.append(float(self._ask("run")))
        return self.seconds[-1]

    def vectors(self) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "anchor.npy"
            self._ask(f"save {path}")
            return np.load(path)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


class BackendView:
    """An encoder whose `encode` always uses one backend (for timing and evaluate_similarity)."""

    def __init__(self, encoder, backend: str) -> None:
        self.encoder, self.backend = encoder, backend

    def encode(self, texts, batch_size=32, **options):
        return self.encoder.encode(texts, batch_size=batch_size, backend=self.backend, **options)

    @property
    def last_encode_stats(self):
        return self.encoder.last_encode_stats


def exported_views(encoder, names: list[str], loose_budget: str, work: Path) -> dict[str, object]:
    """OnnxEncoders of the int8 directories the exported paths need (built before anything is timed)."""
    from polyhead.inference import OnnxEncoder, export_onnx
    from polyhead.inference.export import ExportOptions
    from polyhead.inference.static_int8 import Int8Budget, StaticInt8Options

    views = {}
    for name in names:
        if name == "int8-dynamic":
            options = ExportOptions(quantize=True, int8_method="dynamic")
        elif name == "int8-static-loose":
            low, mean = (float(x) for x in loose_budget.split(":"))
            options = ExportOptions(quantize=True, int8=StaticInt8Options(budget=Int8Budget(low, mean)))
        else:
            continue
        start = time.perf_counter()
        result = export_onnx(encoder, work / name, options)
        cost = result.manifest.graphs["int8"].cost
        print(f"  export {name}: {time.perf_counter() - start:.0f} s; {cost.summary()}", flush=True)
        views[name] = OnnxEncoder(work / name, backend="onnx-int8")
    return views


def time_paths(anchors: list[Anchor], views: dict[str, object], texts, names, batch_size, repeats, reference) -> dict[str, PathResult]:
    """Alternate the anchors and the paths `repeats` times; everything is warmed up (and built) first.

    A path's ratios are taken against the first anchor (sentence-transformers as shipped).
    """
    results = {name: PathResult(name, name) for name in names}
    for name in names:  # builds bf16 twins / ONNX graphs outside the timed runs
        views[name].encode(texts[:64], batch_size=batch_size, show_progress=False)
    for anchor in anchors:
        anchor.warm()
    for round_index in range(repeats):
        line = [f"round {round_index + 1}/{repeats}:"]
        for anchor in anchors:
            line.append(f"{anchor.label} {len(texts) / anchor.run():.0f}/s")
        for name in names:
            start = time.perf_counter()
            vectors = views[name].encode(texts, batch_size=batch_size, show_progress=False)
            elapsed = time.perf_counter() - start
            result = results[name]
            result.backend = name if name in EXPORTED_PATHS else views[name].last_encode_stats.backend
            result.seconds.append(elapsed)
            result.ratios.append(anchors[0].seconds[-1] / elapsed)
            result.ratios_tuned_anchor.append(anchors[-1].seconds[-1] / elapsed)
            cosines = row_cosines(vectors, reference)
            result.min_cosine = min(result.min_cosine, float(cosines.min()))
            result.max_abs_diff = max(result.max_abs_diff, float(np.abs(vectors - reference).max()))
            line.append(f"{name} {len(texts) / elapsed:.0f}/s")
        print("  " + " ".join(line[:1]) + " " + ", ".join(line[1:]), flush=True)
    return results


# ---------------------------------------------------------------------------- accuracy cost
def accuracy_costs(views: dict[str, object], names: list[str], train_texts: int) -> dict[str, dict[str, float]]:
    """Sentiment and topic accuracy (logistic regression on frozen embeddings) and lee correlations per path."""
    from sklearn.linear_model import LogisticRegression

    from polyhead.datasets import jeopardy, rotten_tomatoes
    from polyhead.similarity import evaluate_similarity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tasks = {"sentiment": rotten_tomatoes("sentiment"), "topic": jeopardy()}
    costs = {}
    for name in names:
        view = views[name]
        figures = {}
        for task, data in tasks.items():
            train, test = data.train.head(train_texts), data.test
            x_train = view.encode(train.texts, show_progress=False)
            x_test = view.encode(test.texts, show_progress=False)
            classifier = LogisticRegression(max_iter=2000, C=1.0).fit(x_train, train.labels)
            figures[f"{task}_accuracy"] = float(classifier.score(x_test, test.labels))
        lee = evaluate_similarity(view)
        costs[name] = {**figures, "lee_pearson": lee.pearson, "lee_spearman": lee.spearman}
        print(f"  {name:18s} sentiment {figures['sentiment_accuracy']:.4f}  topic {figures['topic_accuracy']:.4f}  "
              f"lee pearson {lee.pearson:.4f} spearman {lee.spearman:.4f}", flush=True)
    return costs


def accuracy_deltas(costs: dict[str, dict[str, float]]) -> list[str]:
    """Each int8 path's drop from fp32 (torch) per figure, against ACCURACY_BAR."""
    lines = []
    for name, figures in costs.items():
        if PRECISION.get(name) != "int8":
            continue
        parts = []
        for key, bar in ACCURACY_BAR.items():
            delta = figures[key] - costs["torch"][key]
            parts.append(f"{key} {delta:+.4f} ({'ok' if delta >= -bar else 'MISSED'}, bar -{bar})")
        lines.append(f"  {name:18s} " + "; ".join(parts))
    return lines


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device != "cpu":
        import encode_speed_gpu

        return encode_speed_gpu.main(["--device", args.device, *(["--json", str(args.json)] if args.json else [])])
    from transformers.utils import logging as hf_logging

    from polyhead import SentenceEncoder
    from polyhead.datasets import rotten_tomatoes
    from polyhead.inference import cpu_info, set_threads
    from polyhead.inference.allocator import keep_freed_memory

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=UserWarning)
    names = [n.strip() for n in args.paths.split(",") if n.strip()]
    if args.threads:
        set_threads(args.threads)  # polyhead's workers and torch's intra-op threads (sentence-transformers)

    info = cpu_info()
    nominal = info.clock_ghz
    measured = measured_clock_ghz(info.fp32_flops_per_cycle())
    clock = args.clock_ghz or max(nominal, measured)
    cores_used = args.threads or info.cores
    info = replace(info, cores=cores_used)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        texts = rotten_tomatoes("sentiment").train.texts[: args.texts]
    # polyhead raises glibc's malloc thresholds when it first encodes on a CPU (process-wide),
    # so sentence-transformers runs in processes of its own: as shipped, and with that setting.
    allocator_tuned = keep_freed_memory()
    anchors = [Anchor("sentence-transformers", len(texts), args.batch_size, args.threads, tune_allocator=False)]
    if allocator_tuned:
        anchors.append(Anchor("st+alloc", len(texts), args.batch_size, args.threads, tune_allocator=True))
    encoder = SentenceEncoder(device="cpu")
    tokens = int(encoder.text_tokenizer.tokenize(texts).lengths.sum())
    per_token = flops_per_token(encoder)

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, onnxruntime {version('onnxruntime')}, "
        f"sentence-transformers {version('sentence-transformers')}; torch threads {torch.get_num_threads()}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; load average at start {os.getloadavg()[0]:.1f}"
    )
    print(
        "allocator: polyhead raises glibc's mmap/trim thresholds (polyhead.inference.allocator); sentence-transformers runs "
        "in its own process as shipped (x ST) and with the same setting (st+alloc, x ST+alloc)"
        if allocator_tuned else "allocator: left as it is (POLYHEAD_MALLOC_TUNING=0 or not glibc); sentence-transformers in its own process"
    )
    for line in peak_description(info, clock, nominal, measured):
        print(line)
    print(
        f"texts: {len(texts)} Rotten Tomatoes reviews, {tokens} tokens ({tokens / len(texts):.1f}/text); "
        f"FLOPs/token = 2 x {per_token / 2 / 1e6:.2f}M non-embedding params = {per_token / 1e6:.1f} MFLOP"
    )

    reference = encoder.encode(texts, batch_size=args.batch_size, backend="torch", show_progress=False)
    work = tempfile.TemporaryDirectory(prefix="polyhead-bench-")
    views = {name: BackendView(encoder, name) for name in ["torch", *names] if name not in EXPORTED_PATHS}
    views.update(exported_views(encoder, names, args.loose_budget, Path(work.name)))
    print(f"timing: {args.repeats} rounds, batch size {args.batch_size}")
    try:
        results = time_paths(anchors, views, texts, names, args.batch_size, args.repeats, reference)
        st_difference = float(np.abs(anchors[0].vectors() - reference).max())
    finally:
        for anchor in anchors:
            anchor.close()
    print(f"fp32 reference (backend torch) vs sentence-transformers: max abs diff {st_difference:.2e}")

    rows = [["path", "backend", "sent/s", "tokens/s", "x ST", "x ST+alloc", "min cos", "max |diff|", "% peak"]]
    for anchor in anchors:
        median = statistics.median(anchor.seconds)
        ratio = statistics.median(a / b for a, b in zip(anchors[0].seconds, anchor.seconds))
        ratio_tuned = statistics.median(a / b for a, b in zip(anchors[-1].seconds, anchor.seconds))
        rows.append([anchor.label, "torch fp32", f"{len(texts) / median:.0f}", f"{tokens / median:.0f}", f"{ratio:.2f}", f"{ratio_tuned:.2f}",
                     "-", f"{st_difference:.1e}", f"{tokens / median * per_token / info.peak_flops('fp32', clock):.0%}"])
    for result in results.values():
        median = statistics.median(result.seconds)
        result.sentences_per_s = len(texts) / median
        result.tokens_per_s = tokens / median
        result.ratio = statistics.median(result.ratios)
        result.ratio_tuned_anchor = statistics.median(result.ratios_tuned_anchor)
        result.peak_fraction = result.tokens_per_s * per_token / info.peak_flops(PRECISION.get(result.backend, "fp32"), clock)
        rows.append([
            f"polyhead {result.name}", result.backend, f"{result.sentences_per_s:.0f}", f"{result.tokens_per_s:.0f}",
            f"{result.ratio:.2f}", f"{result.ratio_tuned_anchor:.2f}", f"{result.min_cosine:.5f}", f"{result.max_abs_diff:.1e}",
            f"{result.peak_fraction:.0%}",
        ])
    print()
    print_table(rows)
    print(f"(% peak: of the peak for the path's precision; load average at end {os.getloadavg()[0]:.1f})")

    costs = {}
    if not args.no_accuracy:
        lossy = [name for name in names if name != "torch"]
        print(f"\naccuracy (sentiment: logistic regression fit on {args.train_texts} train texts, test split; lee: 1,225 pairs)")
        costs = accuracy_costs(views, ["torch", *lossy], args.train_texts)
        print("\naccuracy against fp32 (torch):")
        for line in accuracy_deltas(costs):
            print(line)
    if args.json:
        payload = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "tokens": tokens,
            "flops_per_token": per_token,
            "clock_ghz": clock,
            "allocator_tuned": allocator_tuned,
            "anchor_seconds": {anchor.label: anchor.seconds for anchor in anchors},
            "st_max_abs_diff": st_difference,
            "paths": {name: asdict(result) for name, result in results.items()},
            "accuracy": costs,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
