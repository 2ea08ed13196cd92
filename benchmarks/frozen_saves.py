"""What checkpoints and best-model copies cost in a frozen-encoder run, with unchanged weights linked and without.

    .venv/bin/python benchmarks/frozen_saves.py                    # the figures in docs/training.md (about 80 s)
    .venv/bin/python benchmarks/frozen_saves.py --value-examples 200 --aid-examples 100 --epochs 1   # a quick look

The run is tests/tasks/test_kinds_real.py's: the built-in all-MiniLM-L6-v2 frozen, a regression head on
Jeopardy! clue values and a 34-label head on disaster_response, validated (and checkpointed) every 47 steps.
It trains twice in one process, same seed: `linked` as polyhead does (frozen weights written once, later
checkpoints and best-model copies hard-link them) and the anchor `written`, where every save writes every
file (`LinkedWrites.reuse` answers "write it"). The clock is around `CheckpointStore.save` and
`save_model_copy`; the ratio is written / linked. Both runs must end with the same test metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--value-examples", type=int, default=4000, help="jeopardy:value training examples (default: 4000)")
    parser.add_argument("--aid-examples", type=int, default=1500, help="disaster_response training examples (default: 1500)")
    parser.add_argument("--epochs", type=float, default=6, help="epochs (default: 6)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args(argv)


@contextmanager
def timed_saves(clock: dict[str, float], linked: bool) -> Iterator[None]:
    """Time checkpoint saves and model copies; with `linked` False every save writes every file."""
    import polyhead.training.checkpoint as checkpoint
    import polyhead.training.loop as loop
    from polyhead.linked_weights import LinkedWrites

    originals = checkpoint.CheckpointStore.save, loop.save_model_copy, LinkedWrites.reuse

    def save(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return originals[0](self, *args, **kwargs)
        finally:
            clock["checkpoints_s"] += time.perf_counter() - start
            clock["checkpoints"] += 1

    def copy(*args, **kwargs):
        start = time.perf_counter()
        try:
            return originals[1](*args, **kwargs)
        finally:
            clock["copies_s"] += time.perf_counter() - start
            clock["copies"] += 1

    checkpoint.CheckpointStore.save, loop.save_model_copy = save, copy
    if not linked:
        LinkedWrites.reuse = lambda self, *args: None
    try:
        yield
    finally:
        checkpoint.CheckpointStore.save, loop.save_model_copy, LinkedWrites.reuse = originals


def run(args: argparse.Namespace, root: Path, linked: bool) -> dict:
    from polyhead.training import load_config, train
    from tests.training.conftest import write_config

    config = {
        "model": {"max_seq_length": 64},
        "tasks": {
            "value": {"data": "jeopardy:value", "max_train_examples": args.value_examples, "max_eval_examples": 500},
            "aid": {"data": "disaster_response", "max_train_examples": args.aid_examples, "max_eval_examples": 300},
        },
        "freeze": {"backbone": True},
        "training": {"epochs": args.epochs, "batch_size": 32, "eval_every": 47, "log_every": 47, "progress": False},
        "output_dir": str(root / ("linked" if linked else "written")),
    }
    clock = {"checkpoints": 0, "checkpoints_s": 0.0, "copies": 0, "copies_s": 0.0}
    start = time.perf_counter()
    with timed_saves(clock, linked):
        result = train(load_config(write_config(root / f"{'linked' if linked else 'written'}.yaml", config)))
    clock["run_s"] = time.perf_counter() - start
    clock["test_metrics"] = {task: {k: v for k, v in m.items() if isinstance(v, float)} for task, m in result.test_metrics.items()}
    return clock


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"written": run(args, Path(tmp), linked=False), "linked": run(args, Path(tmp), linked=True)}
    if sides["written"]["test_metrics"] != sides["linked"]["test_metrics"]:
        raise SystemExit("the two runs ended with different test metrics")
    print(f"command: python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    print(f"{'':10} {'checkpoints':>11} {'seconds':>8} {'copies':>6} {'seconds':>8} {'whole run':>9}")
    for name, side in sides.items():
        print(f"{name:10} {side['checkpoints']:>11} {side['checkpoints_s']:>8.2f} {side['copies']:>6} {side['copies_s']:>8.2f} "
              f"{side['run_s']:>8.1f}s")
    for key, what in (("checkpoints_s", "checkpoints"), ("copies_s", "best-model copies")):
        print(f"{what}: written / linked = {sides['written'][key] / max(sides['linked'][key], 1e-9):.1f}x")
    print("same test metrics on both sides")
    if args.json:
        args.json.write_text(json.dumps(sides, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
