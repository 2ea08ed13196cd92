"""Training speed of `polyhead train` next to a plain PyTorch + transformers loop, and what it costs in accuracy.

    .venv/bin/python benchmarks/train_speed.py                  # make bench-train
    .venv/bin/python benchmarks/train_speed.py --setups frozen  # one setup
    python benchmarks/train_speed.py --device cuda              # under 5 minutes on one H200 (gpu_check.sh: --rounds 1)

One run, one machine, the same work on both sides: the built-in all-MiniLM-L6-v2 with
mean pooling, L2 normalization and max_seq_length 128; the two tasks of
configs/topic_sentiment.yaml (Jeopardy! topic, 40 classes, and Rotten Tomatoes
sentiment), each cut to the same fixed, seeded --train-examples subset (polyhead's
`max_train_examples`); an MLP head per task (hidden [192], dropout 0.1); batch size 32,
one task per batch, tasks mixed in proportion to their size; AdamW (backbone 5e-5,
heads 1e-2, weight decay 0.01 except biases and LayerNorm), 6% linear warm-up then
linear decay, gradient clipping at 1.0.

The anchor is the loop users write (`train_plain` in plain_loop.py; it uses none of polyhead's
training code): `AutoModel` / `AutoTokenizer`, tokenization per batch with
`padding=True`, random batches, fp32, `get_linear_schedule_with_warmup`, and frozen parts
set to `requires_grad_(False)` and `.eval()` but still run forward at every step. polyhead
is `polyhead.training.train(config)` with its default training settings, so whatever the
trainer does by default (precision, batching, caching) is what is measured.

Three setups: `full` (nothing frozen, 1 epoch), `lower_half` (embeddings and the lowest
3 of 6 layers frozen, 3 epochs) and `frozen` (the whole encoder frozen, heads only,
5 epochs). Per setup, each of --rounds rounds runs both sides once, in alternating order,
both with seed = round index. Speed is examples/s of training: each side is timed from
the start of its training loop to its last optimizer step (polyhead: the trainer's own
clock at its last training log line, which includes building its caches of frozen parts
but not model loading). polyhead also validates, checkpoints and keeps the best model at
the end, which the plain loop does not do: the ratio with that included is printed too,
and its wall time for the whole call. A setup's ratio is the median over
rounds of (polyhead examples/s / plain examples/s) within the round, so a busy machine
slows both sides of each ratio alike. Accuracy and macro-F1 on each task's full test
split are reported as mean +- std over rounds, which shows the seed noise the
difference between the sides has to be read against.

On a GPU (`--device cuda`) the plain loop runs twice per round, in fp32 and under bf16
autocast (each as users write it), and the faster of the two by median is the anchor. The
sides rotate their order every round; every input shape either side can meet (batch 32,
every width up to max_seq_length, fp32 and bf16, with and without cuDNN attention) is run
once before the first timed run, so no side pays the process's first-call or per-shape
plan costs; every clock read follows `torch.cuda.synchronize()` (polyhead's trainer clock
is read at a log step, after it has waited for the device). The GPU setups train on 4,000
examples per task for fewer epochs (full and lower_half 1, frozen 2) and have the GPU
targets (4x, 5x, 20x); then `configs/topic_sentiment.yaml` trains one epoch with polyhead's
defaults (validation only at the end) and its seconds of training steps are printed
against the 8 s target. The share of the GPU's peak uses the H200's dense bf16 spec
(989 TFLOP/s, `--peak-tflops`); fp32 without tensor cores is 67 TFLOP/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
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

from machine_figures import flops_per_token, measured_clock_ghz, peak_description, version  # noqa: E402

from train_speed_summary import print_summary, summarise  # noqa: E402
from train_speed_gpu import GPU_PEAK_TFLOPS, anchor_rounds, last_training_clock, run_topic_sentiment, warm_up_gpu_shapes  # noqa: E402
from plain_loop import (  # noqa: E402
    BACKBONE_LR, BATCH_SIZE, EVAL_BATCH_SIZE, HEAD_DROPOUT, HEAD_HIDDEN, HEAD_LR, MAX_GRAD_NORM, MAX_SEQ_LENGTH, TASKS, WARMUP_RATIO, WEIGHT_DECAY,
    PlainMultiTask, evaluate_plain, freeze_plain, plain_batches, task_scores, train_plain,
)


@dataclass(frozen=True)
class Setup:
    """What is frozen, for how long, and the speed-up polyhead should reach."""

    name: str
    description: str
    freeze: dict
    """polyhead's `freeze:` config."""
    frozen_layers: int
    """Plain loop: the embeddings and this many lowest layers are frozen (0: nothing; all layers: the whole encoder)."""
    epochs: int
    target: float
    """Minimum polyhead / plain examples/s ratio."""


SETUPS = {
    "full": Setup("full", "nothing frozen", {}, 0, 1, 2.5),
    "lower_half": Setup("lower_half", "embeddings + lowest 3 of 6 layers frozen", {"embeddings": True, "lower": 3}, 3, 3, 3.0),
    "frozen": Setup("frozen", "whole encoder frozen (heads only)", {"backbone": True}, 6, 5, 20.0),
}
GPU_SETUPS = {
    "full": replace(SETUPS["full"], epochs=1, target=4.0),
    "lower_half": replace(SETUPS["lower_half"], epochs=1, target=5.0),
    "frozen": replace(SETUPS["frozen"], epochs=2, target=20.0),
}
"""On a GPU: the issue's targets, and fewer epochs of more examples so the whole benchmark stays under 5 minutes."""



@dataclass
class RunFigures:
    """One side's figures for one round."""

    side: str
    seed: int
    seconds: float
    """Timed training, from the start of the training loop to the last optimizer step."""
    wall_s: float
    """The whole run: model loading, training and the test evaluation."""
    examples: int
    tokens: float
    """Real (unpadded) tokens of the examples trained on."""
    steps: int
    with_validation_s: float | None = None
    """polyhead only: its clock including the final validation, checkpoint and best-model save."""
    tasks: dict[str, dict[str, float]] = field(default_factory=dict)
    """Test accuracy and macro-F1 per task."""

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    def to_dict(self) -> dict:
        return {**asdict(self), "examples_per_s": self.examples_per_s, "tokens_per_s": self.tokens_per_s}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where both sides train (default: cpu)")
    parser.add_argument("--train-examples", type=int, default=None, help="training examples per task (default: 1000; 4000 on cuda)")
    parser.add_argument("--test-examples", type=int, default=None, help="cut validation and test splits to this many (default: all)")
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"setups to run (default: {','.join(SETUPS)})")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of alternating runs per setup (default: 3)")
    parser.add_argument("--epoch-scale", type=float, default=1.0, help="multiply every setup's epochs (default: 1.0)")
    parser.add_argument("--threads", type=int, default=None, help="cores for both sides (default: all)")
    parser.add_argument("--clock-ghz", type=float, default=None, help="clock for the peak FLOP rate (default: measured, see output)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument("--model", default=None, help="backbone directory for both sides (default: the built-in all-MiniLM-L6-v2)")
    parser.add_argument("--peak-tflops", type=float, default=GPU_PEAK_TFLOPS["bf16"], help="GPU dense bf16 peak (default: H200, 989)")
    parser.add_argument("--polyhead-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a polyhead config field, e.g. training.compile=true (repeatable)")
    parser.add_argument("--topic-sentiment", choices=("auto", "yes", "no"), default="auto",
                        help="also train configs/topic_sentiment.yaml for one epoch (auto: on cuda)")
    args = parser.parse_args(argv)
    if args.train_examples is None:
        args.train_examples = 4000 if args.device == "cuda" else 1000
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU here")
    unknown = [name for name in _names(args.setups) if name not in SETUPS]
    if unknown:
        parser.error(f"unknown setup(s) {', '.join(unknown)}; choose from {', '.join(SETUPS)}")
    return args


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


# ---------------------------------------------------------------------------- data
def load_tasks(train_examples: int, test_examples: int | None) -> dict:
    """Each task's splits exactly as `polyhead train` reads them, so both sides see the same examples."""
    from polyhead.training.config import TaskConfig
    from polyhead.training.data import load_task_data

    return {
        name: load_task_data(name, TaskConfig(data=data, max_train_examples=train_examples, max_eval_examples=test_examples))
        for name, data in TASKS.items()
    }


# ---------------------------------------------------------------------------- polyhead
def polyhead_config(setup: Setup, seed: int, args: argparse.Namespace, output_dir: Path):
    """The run as a polyhead config; training settings not named here stay at polyhead's defaults."""
    from polyhead.training.config import config_from_dict

    head = {"hidden_sizes": [HEAD_HIDDEN], "dropout": HEAD_DROPOUT}
    tasks = {
        name: {"data": data, "head": head, "max_train_examples": args.train_examples, "max_eval_examples": args.test_examples}
        for name, data in TASKS.items()
    }
    training = {
        "seed": seed, "batch_size": BATCH_SIZE, "epochs": setup.epochs * args.epoch_scale, "learning_rate": BACKBONE_LR,
        "head_learning_rate": HEAD_LR, "weight_decay": WEIGHT_DECAY, "warmup_ratio": WARMUP_RATIO,
        "max_grad_norm": MAX_GRAD_NORM, "mixing": "proportional", "eval_batch_size": EVAL_BATCH_SIZE,
        "eval_every": 10**9,  # validate once, at the end
        "progress": False, "device": args.device,
    }
    model = {"name": args.model, "pooling": "mean", "normalize": True, "max_seq_length": MAX_SEQ_LENGTH}
    run = {"model": model, "tasks": tasks, "training": training, "freeze": dict(setup.freeze), "output_dir": str(output_dir)}
    return config_from_dict(run, list(args.polyhead_set))


def run_polyhead(setup: Setup, seed: int, args: argparse.Namespace, mean_lengths: dict[str, float]) -> RunFigures:
    """`polyhead.training.train(config)`; tokens are estimated as mean train length x examples seen per task."""
    from polyhead.training import train

    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        config = polyhead_config(setup, seed, args, Path(tmp) / "run")
        start = time.perf_counter()
        result = train(config)
        wall = time.perf_counter() - start
        summary = json.loads((result.run_dir / "test_metrics.json").read_text())
        seen = {task: int(n) for task, n in summary.get("examples_seen", {}).items()}
        loop_s = last_training_clock(result.run_dir)
    # Without the trainer's per-task counts: steps x batch size at the mean length of all tasks.
    examples = sum(seen.values()) if seen else result.steps * BATCH_SIZE
    tokens = sum(mean_lengths[task] * n for task, n in seen.items()) if seen else examples * statistics.fmean(mean_lengths.values())
    seconds = loop_s if loop_s is not None else result.elapsed_s
    return RunFigures("polyhead", seed, seconds, wall, examples, tokens, result.steps, result.elapsed_s, task_scores(result.test_metrics))


def run_plain(setup: Setup, seed: int, args: argparse.Namespace, data: dict, lengths: dict[str, np.ndarray],
              bf16: bool = False) -> RunFigures:
    """Load, train and test the plain loop (fp32, or under bf16 autocast); tokens are counted exactly from the batches trained on."""
    from transformers import AutoModel, AutoTokenizer

    from polyhead.assets import default_model_path

    start = time.perf_counter()
    torch.manual_seed(seed)
    model_dir = args.model or default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = PlainMultiTask(AutoModel.from_pretrained(model_dir), {task: len(d.label_names) for task, d in data.items()}).to(args.device)
    frozen = freeze_plain(model.backbone, setup.frozen_layers)
    batches = plain_batches({task: d.size("train") for task, d in data.items()}, setup.epochs * args.epoch_scale, random.Random(seed))
    seconds = train_plain(model, tokenizer, data, batches, frozen, args.device, bf16)
    scores = evaluate_plain(model, tokenizer, data, args.device, bf16)
    wall = time.perf_counter() - start
    examples = sum(len(indices) for _, indices in batches)
    tokens = float(sum(lengths[task][indices].sum() for task, indices in batches))
    return RunFigures("plain_bf16" if bf16 else "plain", seed, seconds, wall, examples, tokens, len(batches), None, scores)


# ---------------------------------------------------------------------------- rounds and summary
def warm_up(encoder, texts: list[str]) -> None:
    """One untimed forward and backward pass, so the side that runs first pays no first-call costs of the process."""
    encoder.train()
    batch = encoder.tokenize(texts[:BATCH_SIZE])
    encoder(batch["input_ids"], batch["attention_mask"]).sum().backward()


def run_setup(setup: Setup, args: argparse.Namespace, data: dict, lengths: dict[str, np.ndarray]) -> list[dict[str, RunFigures]]:
    """--rounds rounds of every side, the order rotated each round (on a CPU: plain first in even rounds)."""
    mean_lengths = {task: float(length.mean()) for task, length in lengths.items()}
    sides = {
        "plain": lambda seed: run_plain(setup, seed, args, data, lengths),
        "polyhead": lambda seed: run_polyhead(setup, seed, args, mean_lengths),
    }
    if args.device == "cuda":
        sides["plain_bf16"] = lambda seed: run_plain(setup, seed, args, data, lengths, bf16=True)
    names = list(sides)
    rounds = []
    for index in range(args.rounds):
        order = names[index % len(names):] + names[: index % len(names)]
        figures = {side: sides[side](index) for side in order}
        rounds.append(figures)
        plain, poly = figures["plain"], figures["polyhead"]
        bf16 = f"plain bf16 {figures['plain_bf16'].examples_per_s:.1f} ex/s ({figures['plain_bf16'].seconds:.1f} s), " if "plain_bf16" in figures else ""
        print(
            f"  round {index + 1}/{args.rounds} (seed {index}, {order[0]} first): "
            f"plain {plain.examples_per_s:.1f} ex/s ({plain.seconds:.1f} s), {bf16}"
            f"polyhead {poly.examples_per_s:.1f} ex/s ({poly.seconds:.1f} s; whole call {poly.wall_s:.1f} s) "
            f"-> {poly.examples_per_s / plain.examples_per_s:.2f}x of plain fp32",
            flush=True,
        )
    return rounds


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from transformers.utils import logging as hf_logging

    from polyhead import SentenceEncoder
    from polyhead.inference import cpu_info, set_threads
    from polyhead.training.config import TrainingConfig

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=UserWarning)
    set_threads(args.threads)  # torch's intra-op threads, for both sides
    gpu = args.device == "cuda"
    setups = [(GPU_SETUPS if gpu else SETUPS)[name] for name in _names(args.setups)]

    info = cpu_info()
    nominal = info.clock_ghz
    measured = measured_clock_ghz(info.fp32_flops_per_cycle())
    clock = args.clock_ghz or max(nominal, measured)
    info = replace(info, cores=torch.get_num_threads())
    peaks = {precision: info.peak_flops(precision, clock) for precision in ("fp32", "bf16")}
    if gpu:
        peaks = {"bf16": args.peak_tflops * 1e12, "fp32": GPU_PEAK_TFLOPS["fp32"] * 1e12}

    data = load_tasks(args.train_examples, args.test_examples)
    encoder = SentenceEncoder(args.model, max_seq_length=MAX_SEQ_LENGTH, device="cpu")
    lengths = {task: encoder.text_tokenizer.tokenize(d.texts["train"]).lengths for task, d in data.items()}
    train_flops_per_token = 3 * flops_per_token(encoder)  # forward 2N + backward 4N
    warm_up(encoder, data["topic"].texts["train"])
    del encoder
    if gpu:
        from polyhead.assets import default_model_path

        start = time.perf_counter()
        warm_up_gpu_shapes(args.model or default_model_path(), args.device)
        print(f"warm-up of every training shape on {torch.cuda.get_device_name()}: {time.perf_counter() - start:.1f} s", flush=True)

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, transformers {version('transformers')}; "
        f"torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    if gpu:
        print(f"GPU: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}; peak used for the share: dense bf16 "
              f"{peaks['bf16'] / 1e12:.0f} TFLOP/s (spec sheet; DESIGN.md's ~790 effective would give shares x1.25), fp32 "
              f"{peaks['fp32'] / 1e12:.0f} TFLOP/s")
    else:
        for line in peak_description(info, clock, nominal, measured):
            print(line)
    for task, d in data.items():
        print(
            f"task {task} ({TASKS[task]}): {d.size('train')} train examples ({lengths[task].mean():.1f} tokens each), "
            f"{d.size('validation')} validation, {d.size('test')} test, {len(d.label_names)} classes"
        )
    print(
        f"polyhead: training settings at their defaults beyond the shared ones (mixed_precision default: "
        f"{TrainingConfig().mixed_precision}); tokens/s = mean train length x examples seen per task. "
        f"plain: {'fp32 and bf16 autocast, the faster is the anchor' if gpu else 'fp32'}, exact token counts. Training FLOPs/token = 6 x {train_flops_per_token / 6 / 1e6:.2f}M non-embedding params"
    )

    results: dict = {}
    topic_sentiment = None

    def save(complete: bool) -> None:
        """Every figure so far to --json: after each setup, so a run cut short by a timeout keeps what finished."""
        if not args.json:
            return
        machine = {"cpu": info.model, "cores": info.cores, "clock_ghz": clock, "peak_flops": peaks, "torch": torch.__version__,
                   "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average_end": list(os.getloadavg())}
        if gpu:
            machine["gpu"] = torch.cuda.get_device_name()
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine, "complete": complete,
                   "train_flops_per_token": train_flops_per_token,
                   "mean_train_tokens": {task: float(length.mean()) for task, length in lengths.items()},
                   "setups": results, "device": args.device, "topic_sentiment": topic_sentiment}
        args.json.write_text(json.dumps(payload, indent=2))

    for setup in setups:
        epochs = setup.epochs * args.epoch_scale
        print(f"\n=== {setup.name}: {setup.description}, {epochs:g} epoch(s), {args.rounds} round(s)", flush=True)
        rounds = run_setup(setup, args, data, lengths)
        anchor, anchored = anchor_rounds(rounds)
        if gpu:
            medians = {side: statistics.median(r[side].examples_per_s for r in rounds) for side in ("plain", "plain_bf16")}
            print(f"anchor: {anchor} (median plain fp32 {medians['plain']:.1f} ex/s, plain bf16 autocast {medians['plain_bf16']:.1f} ex/s)")
        summary = summarise(setup, anchored, peaks, train_flops_per_token, ("fp32", "bf16") if gpu else ("fp32",))
        summary["anchor"] = anchor
        print_summary(setup, summary)
        figures = [{side: run.to_dict() for side, run in r.items()} for r in rounds]
        results[setup.name] = {"setup": asdict(setup), "epochs": epochs, "rounds": figures, "summary": summary}
        save(complete=False)
    if args.topic_sentiment == "yes" or (args.topic_sentiment == "auto" and gpu):
        print("\n=== configs/topic_sentiment.yaml, one epoch, polyhead defaults", flush=True)
        topic_sentiment = run_topic_sentiment(args)
        ts = topic_sentiment
        seconds = f"{ts['training_steps_s']:.1f} s" if ts["training_steps_s"] is not None else "unknown"
        print(f"{ts['steps']} steps, {ts['examples']} examples: {seconds} of training steps "
              f"(target <= {ts['target_s']:g} s: {'PASS' if ts['passed'] else 'FAIL'}), whole call {ts['wall_s']:.1f} s; "
              + ", ".join(f"{task} accuracy {m['accuracy']:.4f}" for task, m in ts["tasks"].items()))

    load = os.getloadavg()
    verdicts = [f"{name} {r['summary']['ratio']:.2f}x {'PASS' if r['summary']['passed'] else 'FAIL'}" for name, r in results.items()]
    if topic_sentiment is not None and topic_sentiment["training_steps_s"] is not None:
        verdicts.append(f"topic_sentiment {topic_sentiment['training_steps_s']:.1f} s {'PASS' if topic_sentiment['passed'] else 'FAIL'}")
    print("\nsummary: " + ", ".join(verdicts))
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    save(complete=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
