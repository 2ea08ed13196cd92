"""train_speed.py's GPU-only parts: warming every training shape, the fp32 or bf16 plain-loop anchor, configs/topic_sentiment.yaml.

Kept apart so train_speed.py stays readable; see its docstring for the protocol.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from plain_loop import BATCH_SIZE, MAX_SEQ_LENGTH, task_scores

GPU_PEAK_TFLOPS = {"bf16": 989.0, "fp32": 67.0}
"""NVIDIA H200 SXM spec sheet, dense (no sparsity); fp32 without tensor cores."""
TOPIC_SENTIMENT_TARGET_S = 8.0
"""configs/topic_sentiment.yaml, one epoch on one H200: seconds of training steps."""


def last_training_clock(run_dir: Path) -> float | None:
    """The trainer's clock at its last training log line (written before the final validation)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    clocks = [r["elapsed_s"] for r in records if r.get("type") == "train" and "elapsed_s" in r]
    return float(clocks[-1]) if clocks else None


def warm_up_gpu_shapes(model_dir, device: str) -> None:
    """Every (batch 32, width <= max_seq_length) shape once, fp32 and bf16, on the attention backends either side uses:
    kernels load lazily and cuDNN attention plans per shape, and neither should land on the side that happens to run first."""
    from transformers import AutoModel

    from polyhead.sdpa import attention_backends

    backbone = AutoModel.from_pretrained(model_dir).to(device).train()
    for width in range(1, MAX_SEQ_LENGTH + 1):
        ids = torch.randint(5, 1000, (BATCH_SIZE, width), device=device)
        mask = torch.ones_like(ids)
        # The plain loop meets any width (PyTorch's default backends); polyhead only its length buckets (its own backends).
        backends = [contextlib.nullcontext] + ([attention_backends] if width % 16 == 0 else [])
        for bf16 in (False, True):
            for chosen in backends:
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16), chosen():
                    backbone(input_ids=ids, attention_mask=mask).last_hidden_state.float().mean().backward()
    backbone.zero_grad(set_to_none=True)
    del backbone
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def run_topic_sentiment(args: argparse.Namespace) -> dict:
    """configs/topic_sentiment.yaml for one epoch with polyhead's defaults; validation only after the last step, so the
    trainer's clock at its last training line is the seconds of training steps (and cache building, none by default)."""
    from polyhead.training import load_config, train

    with tempfile.TemporaryDirectory(prefix="topic_sentiment_") as tmp:
        overrides = ["training.epochs=1", "training.eval_every=1000000000", "training.progress=false", f"training.device={args.device}",
                     f"output_dir={tmp}/run", *args.polyhead_set]
        if args.model:
            overrides.append(f"model.name={args.model}")
        config = load_config(Path(__file__).resolve().parent.parent / "configs" / "topic_sentiment.yaml", overrides)
        start = time.perf_counter()
        result = train(config)
        wall = time.perf_counter() - start
        steps_s = last_training_clock(result.run_dir)
        summary = json.loads((result.run_dir / "test_metrics.json").read_text())
    examples = sum(int(n) for n in summary.get("examples_seen", {}).values()) or result.steps * BATCH_SIZE
    return {"steps": result.steps, "training_steps_s": steps_s, "wall_s": wall, "examples": examples,
            "examples_per_s": examples / steps_s if steps_s else None, "target_s": TOPIC_SENTIMENT_TARGET_S,
            "passed": steps_s is not None and steps_s <= TOPIC_SENTIMENT_TARGET_S, "tasks": task_scores(result.test_metrics)}


def anchor_rounds(rounds: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The plain variant with the higher median examples/s is the anchor; rounds as {"plain": anchor, "polyhead": ...}."""
    variants = [side for side in ("plain", "plain_bf16") if side in rounds[0]]
    anchor = max(variants, key=lambda side: statistics.median(r[side].examples_per_s for r in rounds))
    return anchor, [{"plain": r[anchor], "polyhead": r["polyhead"]} for r in rounds]
