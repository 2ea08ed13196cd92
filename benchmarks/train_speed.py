"""Training speed of `polyhead train` next to a plain PyTorch + transformers loop, and what it costs in accuracy.

    .venv/bin/python benchmarks/train_speed.py                  # make bench-train
    .venv/bin/python benchmarks/train_speed.py --setups frozen  # one setup

One run, one machine, the same work on both sides: the built-in all-MiniLM-L6-v2 with
mean pooling, L2 normalization and max_seq_length 128; the two tasks of
configs/topic_sentiment.yaml (Jeopardy! topic, 40 classes, and Rotten Tomatoes
sentiment), each cut to the same fixed, seeded --train-examples subset (polyhead's
`max_train_examples`); an MLP head per task (hidden [192], dropout 0.1); batch size 32,
one task per batch, tasks mixed in proportion to their size; AdamW (backbone 5e-5,
heads 1e-2, weight decay 0.01 except biases and LayerNorm), 6% linear warm-up then
linear decay, gradient clipping at 1.0.

The anchor is the loop users write (`train_plain` below; it uses none of polyhead's
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
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from encode_speed import flops_per_token, measured_clock_ghz, peak_description, print_table  # noqa: E402

# ---------------------------------------------------------------------------- the shared setup
TASKS = {"topic": "jeopardy", "sentiment": "rotten_tomatoes:sentiment"}
"""Task name -> built-in dataset, as in configs/topic_sentiment.yaml."""
MAX_SEQ_LENGTH = 128
HEAD_HIDDEN, HEAD_DROPOUT = 192, 0.1
BATCH_SIZE = 32
BACKBONE_LR, HEAD_LR, WEIGHT_DECAY = 5e-5, 1e-2, 0.01
WARMUP_RATIO, MAX_GRAD_NORM = 0.06, 1.0
EVAL_BATCH_SIZE = 64


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
ACCURACY_TOLERANCE_PT = 0.5


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
    parser.add_argument("--train-examples", type=int, default=1000, help="training examples per task (default: 1000)")
    parser.add_argument("--test-examples", type=int, default=None, help="cut validation and test splits to this many (default: all)")
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"setups to run (default: {','.join(SETUPS)})")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of alternating runs per setup (default: 3)")
    parser.add_argument("--epoch-scale", type=float, default=1.0, help="multiply every setup's epochs (default: 1.0)")
    parser.add_argument("--threads", type=int, default=None, help="cores for both sides (default: all)")
    parser.add_argument("--clock-ghz", type=float, default=None, help="clock for the peak FLOP rate (default: measured, see output)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument("--model", default=None, help="backbone directory for both sides (default: the built-in all-MiniLM-L6-v2)")
    args = parser.parse_args(argv)
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
        "progress": False,
    }
    model = {"name": args.model, "pooling": "mean", "normalize": True, "max_seq_length": MAX_SEQ_LENGTH}
    run = {"model": model, "tasks": tasks, "training": training, "freeze": dict(setup.freeze), "output_dir": str(output_dir)}
    return config_from_dict(run)


def last_training_clock(run_dir: Path) -> float | None:
    """The trainer's clock at its last training log line (written before the final validation)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    clocks = [r["elapsed_s"] for r in records if r.get("type") == "train" and "elapsed_s" in r]
    return float(clocks[-1]) if clocks else None


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


def task_scores(metrics: dict[str, dict]) -> dict[str, dict[str, float]]:
    return {task: {"accuracy": float(m["accuracy"]), "macro_f1": float(m["macro_f1"])} for task, m in metrics.items()}


# ---------------------------------------------------------------------------- the plain loop (the anchor)
class PlainMultiTask(nn.Module):
    """What a user writes: a transformers backbone, mean pooling + L2 normalization, an MLP head per task."""

    def __init__(self, backbone: nn.Module, num_labels: dict[str, int]) -> None:
        super().__init__()
        self.backbone = backbone
        width = backbone.config.hidden_size
        self.heads = nn.ModuleDict({
            task: nn.Sequential(
                nn.Dropout(HEAD_DROPOUT), nn.Linear(width, HEAD_HIDDEN), nn.GELU(), nn.Dropout(HEAD_DROPOUT), nn.Linear(HEAD_HIDDEN, n)
            )
            for task, n in num_labels.items()
        })

    def forward(self, task: str, **inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return self.heads[task](F.normalize(pooled, p=2, dim=1))


def freeze_plain(backbone: nn.Module, layers: int) -> list[nn.Module]:
    """requires_grad_(False) on the frozen parts; returned so the loop keeps them in eval mode."""
    if layers == 0:
        return []
    blocks = backbone.encoder.layer
    parts = [backbone] if layers >= len(blocks) else [backbone.embeddings, *blocks[:layers]]
    for part in parts:
        part.requires_grad_(False)
    return parts


def adamw_groups(module: nn.Module, lr: float) -> list[dict]:
    """The usual two groups: weight decay on matrices, none on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    groups = [{"params": decay, "lr": lr, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def plain_batches(sizes: dict[str, int], epochs: float, rng: random.Random) -> list[tuple[str, list[int]]]:
    """Per epoch: shuffle each task's examples, cut them into batches, shuffle all tasks' batches together.

    Shuffling whole batches mixes the tasks in proportion to their size. Stops after
    epochs x (all examples), so a fractional epoch count is a cut-off last epoch.
    """
    target = round(epochs * sum(sizes.values()))
    batches: list[tuple[str, list[int]]] = []
    count = 0
    while count < target:
        epoch = []
        for task, size in sizes.items():
            order = list(range(size))
            rng.shuffle(order)
            epoch += [(task, order[i : i + BATCH_SIZE]) for i in range(0, size, BATCH_SIZE)]
        rng.shuffle(epoch)
        for task, indices in epoch:
            indices = indices[: target - count]
            batches.append((task, indices))
            count += len(indices)
            if count >= target:
                break
    return batches


def train_plain(model: PlainMultiTask, tokenizer, data: dict, batches: list, frozen: list[nn.Module]) -> float:
    """The training loop; returns its seconds from the first batch to the last optimizer step."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(adamw_groups(model.backbone, BACKBONE_LR) + adamw_groups(model.heads, HEAD_LR))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(WARMUP_RATIO * len(batches)), len(batches))
    trainable = [p for p in model.parameters() if p.requires_grad]
    labels = {task: torch.tensor(d.targets["train"]) for task, d in data.items()}
    model.train()
    for part in frozen:
        part.eval()
    start = time.perf_counter()
    for task, indices in batches:
        texts = [data[task].texts["train"][i] for i in indices]
        inputs = tokenizer(texts, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt")
        loss = F.cross_entropy(model(task, **inputs), labels[task][indices])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return time.perf_counter() - start


def evaluate_plain(model: PlainMultiTask, tokenizer, data: dict) -> dict[str, dict[str, float]]:
    """Test accuracy and macro-F1 in eval mode without gradients (scored by the same function as polyhead's)."""
    from polyhead.metrics import classification_metrics

    model.eval()
    metrics = {}
    with torch.no_grad():
        for task, d in data.items():
            texts, predicted = d.texts["test"], []
            for i in range(0, len(texts), EVAL_BATCH_SIZE):
                batch = texts[i : i + EVAL_BATCH_SIZE]
                inputs = tokenizer(batch, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt")
                predicted += model(task, **inputs).argmax(dim=-1).tolist()
            metrics[task] = classification_metrics(d.targets["test"], predicted, d.label_names)
    return task_scores(metrics)


def run_plain(setup: Setup, seed: int, args: argparse.Namespace, data: dict, lengths: dict[str, np.ndarray]) -> RunFigures:
    """Load, train and test the plain loop; tokens are counted exactly from the batches trained on."""
    from transformers import AutoModel, AutoTokenizer

    from polyhead.assets import default_model_path

    start = time.perf_counter()
    torch.manual_seed(seed)
    model_dir = args.model or default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = PlainMultiTask(AutoModel.from_pretrained(model_dir), {task: len(d.label_names) for task, d in data.items()})
    frozen = freeze_plain(model.backbone, setup.frozen_layers)
    batches = plain_batches({task: d.size("train") for task, d in data.items()}, setup.epochs * args.epoch_scale, random.Random(seed))
    seconds = train_plain(model, tokenizer, data, batches, frozen)
    scores = evaluate_plain(model, tokenizer, data)
    wall = time.perf_counter() - start
    examples = sum(len(indices) for _, indices in batches)
    tokens = float(sum(lengths[task][indices].sum() for task, indices in batches))
    return RunFigures("plain", seed, seconds, wall, examples, tokens, len(batches), None, scores)


# ---------------------------------------------------------------------------- rounds and summary
def warm_up(encoder, texts: list[str]) -> None:
    """One untimed forward and backward pass, so the side that runs first pays no first-call costs of the process."""
    encoder.train()
    batch = encoder.tokenize(texts[:BATCH_SIZE])
    encoder(batch["input_ids"], batch["attention_mask"]).sum().backward()


def run_setup(setup: Setup, args: argparse.Namespace, data: dict, lengths: dict[str, np.ndarray]) -> list[dict[str, RunFigures]]:
    """--rounds rounds of both sides, plain first in even rounds, polyhead first in odd ones."""
    mean_lengths = {task: float(length.mean()) for task, length in lengths.items()}
    sides = {
        "plain": lambda seed: run_plain(setup, seed, args, data, lengths),
        "polyhead": lambda seed: run_polyhead(setup, seed, args, mean_lengths),
    }
    rounds = []
    for index in range(args.rounds):
        order = ["plain", "polyhead"] if index % 2 == 0 else ["polyhead", "plain"]
        figures = {side: sides[side](index) for side in order}
        rounds.append(figures)
        plain, poly = figures["plain"], figures["polyhead"]
        print(
            f"  round {index + 1}/{args.rounds} (seed {index}, {order[0]} first): "
            f"plain {plain.examples_per_s:.1f} ex/s ({plain.seconds:.1f} s), "
            f"polyhead {poly.examples_per_s:.1f} ex/s ({poly.seconds:.1f} s; whole call {poly.wall_s:.1f} s) "
            f"-> {poly.examples_per_s / plain.examples_per_s:.2f}x",
            flush=True,
        )
    return rounds


def summarise(setup: Setup, rounds: list[dict[str, RunFigures]], peaks: dict[str, float], train_flops_per_token: float) -> dict:
    """Medians, the ratio, PASS/FAIL and accuracy statistics of one setup."""
    summary: dict = {"sides": {}, "tasks": {}}
    for side in ("plain", "polyhead"):
        runs = [r[side] for r in rounds]
        figures = {
            "examples_per_s": statistics.median(r.examples_per_s for r in runs),
            "tokens_per_s": statistics.median(r.tokens_per_s for r in runs),
            "seconds": statistics.median(r.seconds for r in runs),
            "wall_s": statistics.median(r.wall_s for r in runs),
            "examples": statistics.median(r.examples for r in runs),
        }
        if setup.frozen_layers == 0:  # 6N FLOPs/token holds only when every layer trains
            precisions = ("fp32", "bf16") if side == "polyhead" else ("fp32",)
            figures["peak_share"] = {p: figures["tokens_per_s"] * train_flops_per_token / peaks[p] for p in precisions}
        summary["sides"][side] = figures
    ratios = [r["polyhead"].examples_per_s / r["plain"].examples_per_s for r in rounds]
    summary["ratios"], summary["ratio"] = ratios, statistics.median(ratios)
    with_validation = [r["polyhead"].examples / r["polyhead"].with_validation_s / r["plain"].examples_per_s
                       for r in rounds if r["polyhead"].with_validation_s]
    summary["ratio_with_final_validation"] = statistics.median(with_validation) if with_validation else None
    summary["target"], summary["passed"] = setup.target, summary["ratio"] >= setup.target
    for task in rounds[0]["plain"].tasks:
        entry = {side: {metric: mean_std([r[side].tasks[task][metric] for r in rounds]) for metric in ("accuracy", "macro_f1")}
                 for side in ("plain", "polyhead")}
        difference = 100 * (entry["polyhead"]["accuracy"]["mean"] - entry["plain"]["accuracy"]["mean"])
        entry["accuracy_difference_pt"] = difference
        entry["within_tolerance"] = difference >= -ACCURACY_TOLERANCE_PT
        # Seed noise of the difference of two means over len(rounds) seeds each.
        stds = [entry[side]["accuracy"]["std"] for side in ("plain", "polyhead")]
        entry["difference_standard_error_pt"] = 100 * (sum(sd**2 for sd in stds) / len(rounds)) ** 0.5
        entry["beyond_noise"] = len(rounds) > 1 and abs(difference) > 2 * entry["difference_standard_error_pt"]
        summary["tasks"][task] = entry
    return summary


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def print_summary(setup: Setup, summary: dict) -> None:
    sides = summary["sides"]
    peak_columns = "peak_share" in sides["plain"]
    header = ["side", "examples/s", "tokens/s", "train s", "whole run s"] + (["% fp32 peak", "% bf16 peak"] if peak_columns else [])
    rows = [header]
    for side, figures in sides.items():
        row = [side, f"{figures['examples_per_s']:.1f}", f"{figures['tokens_per_s']:.0f}"]
        row += [f"{figures['seconds']:.1f}", f"{figures['wall_s']:.1f}"]
        if peak_columns:
            shares = figures["peak_share"]
            row += [f"{shares['fp32']:.1%}", f"{shares['bf16']:.1%}" if "bf16" in shares else "-"]
        rows.append(row)
    print()
    print_table(rows)
    verdict = "PASS" if summary["passed"] else "FAIL"
    print(f"ratio polyhead / plain (median of per-round ratios): {summary['ratio']:.2f}x; target >= {setup.target:g}x: {verdict}")
    with_validation = summary["ratio_with_final_validation"]
    if with_validation is not None:
        print(f"  (with polyhead's final validation, checkpoint and best-model save counted too: {with_validation:.2f}x)")
    rows = [["task", "side", "accuracy", "macro-F1"]]
    for task, entry in summary["tasks"].items():
        for side in ("plain", "polyhead"):
            rows.append([task, side, _pm(entry[side]["accuracy"]), _pm(entry[side]["macro_f1"])])
    print()
    print_table(rows)
    for task, entry in summary["tasks"].items():
        tolerance = ACCURACY_TOLERANCE_PT
        note = f"within {tolerance} pt or better" if entry["within_tolerance"] else f"lower by more than {tolerance} pt"
        noise = entry["difference_standard_error_pt"]
        verdict = "beyond" if entry["beyond_noise"] else "within"
        print(f"{task}: accuracy polyhead - plain = {entry['accuracy_difference_pt']:+.2f} pt ({note}); "
              f"standard error of the difference {noise:.2f} pt, so the gap is {verdict} seed noise (2 standard errors)")


def _pm(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.4f} +- {stats['std']:.4f}"


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
    setups = [SETUPS[name] for name in _names(args.setups)]

    info = cpu_info()
    nominal = info.clock_ghz
    measured = measured_clock_ghz(info.fp32_flops_per_cycle())
    clock = args.clock_ghz or max(nominal, measured)
    info = replace(info, cores=torch.get_num_threads())
    peaks = {precision: info.peak_flops(precision, clock) for precision in ("fp32", "bf16")}

    data = load_tasks(args.train_examples, args.test_examples)
    encoder = SentenceEncoder(args.model, max_seq_length=MAX_SEQ_LENGTH, device="cpu")
    lengths = {task: encoder.text_tokenizer.tokenize(d.texts["train"]).lengths for task, d in data.items()}
    train_flops_per_token = 3 * flops_per_token(encoder)  # forward 2N + backward 4N
    warm_up(encoder, data["topic"].texts["train"])
    del encoder

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, transformers {_version('transformers')}; "
        f"torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
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
        f"plain: fp32, exact token counts. Training FLOPs/token = 6 x {train_flops_per_token / 6 / 1e6:.2f}M non-embedding params"
    )

    results = {}
    for setup in setups:
        epochs = setup.epochs * args.epoch_scale
        print(f"\n=== {setup.name}: {setup.description}, {epochs:g} epoch(s), {args.rounds} round(s)", flush=True)
        rounds = run_setup(setup, args, data, lengths)
        summary = summarise(setup, rounds, peaks, train_flops_per_token)
        print_summary(setup, summary)
        figures = [{side: run.to_dict() for side, run in r.items()} for r in rounds]
        results[setup.name] = {"setup": asdict(setup), "epochs": epochs, "rounds": figures, "summary": summary}

    load = os.getloadavg()
    verdicts = [f"{name} {r['summary']['ratio']:.2f}x {'PASS' if r['summary']['passed'] else 'FAIL'}" for name, r in results.items()]
    print("\nsummary: " + ", ".join(verdicts))
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    if args.json:
        payload = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "machine": {"cpu": info.model, "cores": info.cores, "clock_ghz": clock, "peak_flops": peaks, "torch": torch.__version__,
                        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average_end": list(load)},
            "train_flops_per_token": train_flops_per_token,
            "mean_train_tokens": {task: float(length.mean()) for task, length in lengths.items()},
            "setups": results,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


def _version(package: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(package)


if __name__ == "__main__":
    sys.exit(main())
