"""Where a polyhead training step spends its time: data, frozen-part cache, forward, backward, optimizer, evaluation.

    .venv/bin/python benchmarks/train_profile.py                      # full fine-tuning, defaults
    .venv/bin/python benchmarks/train_profile.py --freeze lower=3     # a cut below layer 3
    .venv/bin/python benchmarks/train_profile.py --mixed-precision no --no-group-by-length
    python benchmarks/train_profile.py --device cuda [--compile] # on a GPU: each part ends with a device sync
    python benchmarks/train_profile.py --device cuda --json profile.json   # figures kept as each part finishes

Builds the trainer of `polyhead train` on the two tasks of configs/topic_sentiment.yaml
(--train-examples per task) and times each part of `--steps` steps with a clock around
it (torch on a CPU runs synchronously, so the parts add up to the step; on a GPU each part
ends with `torch.cuda.synchronize()`, which the real step does not do, so there the parts
say where device time goes and their sum is a little above an unprofiled step). Then one
validation pass and the start-up costs (tokenizing every training text, loading the model).
Prints seconds per step per part and its share; the figures are recorded in
docs/training_speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-examples", type=int, default=2000, help="training examples per task (default: 2000)")
    parser.add_argument("--eval-examples", type=int, default=None, help="validation examples per task (default: all)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps after --warmup-steps (default: 40)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed first steps (default: 5)")
    parser.add_argument("--mixed-precision", default="auto", help="training.mixed_precision (default: auto)")
    parser.add_argument("--no-group-by-length", action="store_true", help="random batches")
    parser.add_argument("--freeze", default="", help="freeze option as key=value, e.g. lower=3 or backbone=true")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="training.device (default: cpu)")
    parser.add_argument("--compile", action="store_true", help="training.compile")
    parser.add_argument("--pad-to-multiple", type=int, default=None, help="training.pad_to_multiple (default: the device's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here, rewritten after each part")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace, output_dir: Path):
    import yaml

    from polyhead.training.config import config_from_dict

    tasks = {
        name: {"data": data, "max_train_examples": args.train_examples, "max_eval_examples": args.eval_examples,
               "head": {"hidden_sizes": [192], "dropout": 0.1}}
        for name, data in (("topic", "jeopardy"), ("sentiment", "rotten_tomatoes:sentiment"))
    }
    freeze = {}
    if args.freeze:
        key, value = args.freeze.split("=", 1)
        freeze[key] = yaml.safe_load(value)
    run = {
        "model": {"pooling": "mean", "normalize": True, "max_seq_length": 128},
        "tasks": tasks, "freeze": freeze, "output_dir": str(output_dir),
        "training": {"max_steps": 2 * args.steps + args.warmup_steps, "progress": False, "eval_every": 10**9,
                     "mixed_precision": args.mixed_precision, "group_by_length": not args.no_group_by_length,
                     "device": args.device, "compile": args.compile, "pad_to_multiple": args.pad_to_multiple},
    }
    return config_from_dict(run)


def timed_step(trainer, clock: dict[str, float]) -> None:
    """One optimizer step of Trainer.train_step, each part under its own clock (grad_accum 1, one process)."""
    from polyhead.sdpa import attention_backends
    from polyhead.training.device_ids import host_to_device
    from polyhead.training.optim import schedule_factor, set_learning_rates

    t, acc = trainer.config.training, trainer.accelerator
    cuda = acc.device.type == "cuda"
    marks = [time.perf_counter()]

    def mark(name: str) -> None:
        if cuda:
            torch.cuda.synchronize()
        marks.append(time.perf_counter())
        clock[name] += marks[-1] - marks[-2]

    set_learning_rates(trainer.optimizer, schedule_factor(trainer.state.step, int(t.warmup_ratio * trainer.total_steps), trainer.total_steps))
    trainer.modes.ensure()
    task, indices = trainer.sampler.next_batch()
    rows = host_to_device(torch.as_tensor(indices, dtype=torch.int64), acc.device)
    targets = trainer.train_targets[task][rows]
    streams = trainer.task_data[task].streams()
    mark("sampler + labels")
    with acc.autocast(), attention_backends():
        features = trainer.features
        if features.cut.caches and features.cut.kind != "encoder":
            for stream in streams:
                features.fill(stream, indices)
            mark("frozen part (cache fill)")
        inputs = [features.batch(stream, indices, rows) for stream in streams]
        mark("padding + cache read")
        weighted, raw = trainer.forward(inputs, targets=targets, task=task, rows=rows)
        mark("forward")
        acc.backward(weighted)
        mark("backward")
    trainer.tally.add(task, raw, len(indices), [trainer.lengths[task][i] for i in indices], inputs[0]["attention_mask"].shape[1]
                      if "attention_mask" in inputs[0] else None)
    acc.clip_grad_norm_(trainer.trainable_params, t.max_grad_norm or float("inf"))
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.state.step += 1
    mark("clip + optimizer")


def time_unprofiled(trainer, steps: int) -> float:
    """Seconds of `steps` real training steps back to back, one device sync at the end (as a log step has)."""
    if trainer.accelerator.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    trainer.check_finite()
    return time.perf_counter() - start


class Figures:
    """The figures so far, rewritten to --json after each part, so a run cut short by a timeout keeps what finished."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.path = args.json
        self.data: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "python": platform.python_version(),
                           "torch": torch.__version__, "device": args.device}
        if args.device == "cuda" and torch.cuda.is_available():
            self.data["gpu"] = torch.cuda.get_device_name()

    def add(self, **figures) -> None:
        self.data.update(figures)
        if self.path is not None:
            self.path.write_text(json.dumps(self.data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = Figures(args)
    from transformers.utils import logging as hf_logging

    from polyhead.training.loop import Trainer

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="train_profile_") as tmp:
        config = build_config(args, Path(tmp) / "run")
        start = time.perf_counter()
        trainer = Trainer(config, resume=False, base_dir=Path("."))
        setup_s = time.perf_counter() - start
        figures.add(setup_s=setup_s, precision=trainer.precision.reason, cut=trainer.features.cut.describe(),
                    batch_size=config.training.batch_size)
        clock: dict[str, float] = defaultdict(float)
        start = time.perf_counter()
        for _ in range(args.warmup_steps):
            timed_step(trainer, defaultdict(float))
        figures.add(warmup_s=time.perf_counter() - start)  # with --compile: mostly compiling
        step_times = []
        for _ in range(args.steps):
            before = sum(clock.values())
            timed_step(trainer, clock)
            step_times.append(sum(clock.values()) - before)
        figures.add(steps=args.steps, step_ms_median=statistics.median(step_times) * 1000,
                    parts_ms_per_step={name: seconds / args.steps * 1000 for name, seconds in clock.items()})
        unprofiled = time_unprofiled(trainer, args.steps)
        compiled = {"asked": args.compile, "active": bool(getattr(trainer.forward, "active", False)),
                    "failure": getattr(trainer.forward, "failure", None)}
        figures.add(unprofiled_ms_per_step=unprofiled / args.steps * 1000, compile=compiled)
        start = time.perf_counter()
        trainer.evaluate()
        eval_s = time.perf_counter() - start
        figures.add(validation_s=eval_s, validation_texts=sum(d.size("validation") for d in trainer.task_data.values()))
        start = time.perf_counter()
        trainer.checkpoint()
        checkpoint_s = time.perf_counter() - start
        figures.add(checkpoint_s=checkpoint_s)

    total = sum(clock.values())
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"precision: {trainer.precision.reason}; cut: {trainer.features.cut.describe()}; "
          f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{args.steps} steps of batch {config.training.batch_size}: median {statistics.median(step_times) * 1000:.0f} ms/step, "
          f"{args.steps * config.training.batch_size / total:.1f} examples/s\n")
    print(f"{'part':<28} {'ms/step':>9} {'share':>7}")
    for name, seconds in clock.items():
        print(f"{name:<28} {seconds / args.steps * 1000:>9.1f} {seconds / total:>7.1%}")
    if args.compile:
        print(f"training.compile: {'compiled' if compiled['active'] else 'fell back to eager: ' + str(compiled['failure'])}")
    print(f"\nthe trainer's own step (Trainer.train_step, no clock inside), {args.steps} steps: {unprofiled / args.steps * 1000:.1f} ms/step")
    validation = sum(d.size("validation") for d in trainer.task_data.values())
    print(f"\none validation pass ({validation} texts, exact fp32 path): {eval_s:.1f} s "
          f"= {eval_s / (total / args.steps):.0f} training steps")
    print(f"one checkpoint (weights, optimizer, RNG): {checkpoint_s:.2f} s")
    print(f"start-up (read data, load model, tokenize every training text, build the optimizer): {setup_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
