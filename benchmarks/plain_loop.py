"""The anchor of `train_speed.py`: the multi-task loop users write with PyTorch and transformers alone.

`AutoModel` / `AutoTokenizer`, tokenization per batch with `padding=True`, random batches, fp32,
`get_linear_schedule_with_warmup`, and frozen parts set to `requires_grad_(False)` and `.eval()`
but still run forward at every step. It uses none of polyhead's training code; only the test
metrics are scored by polyhead's function, so both sides are scored alike. On a GPU the same
loop moves each batch with `.to(device)`, in fp32 or (as users add it) under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import random
import time

import torch
import torch.nn.functional as F
from torch import nn

TASKS = {"topic": "jeopardy", "sentiment": "rotten_tomatoes:sentiment"}
"""Task name -> built-in dataset, as in configs/topic_sentiment.yaml."""
MAX_SEQ_LENGTH = 128
HEAD_HIDDEN, HEAD_DROPOUT = 192, 0.1
BATCH_SIZE = 32
BACKBONE_LR, HEAD_LR, WEIGHT_DECAY = 5e-5, 1e-2, 0.01
WARMUP_RATIO, MAX_GRAD_NORM = 0.06, 1.0
EVAL_BATCH_SIZE = 64


def task_scores(metrics: dict[str, dict]) -> dict[str, dict[str, float]]:
    return {task: {"accuracy": float(m["accuracy"]), "macro_f1": float(m["macro_f1"])} for task, m in metrics.items()}


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


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _precision(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def train_plain(model: PlainMultiTask, tokenizer, data: dict, batches: list, frozen: list[nn.Module],
                device: torch.device | str = "cpu", bf16: bool = False) -> float:
    """The training loop on `model`'s device; returns its seconds from the first batch to the last optimizer step."""
    device = torch.device(device)
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(adamw_groups(model.backbone, BACKBONE_LR) + adamw_groups(model.heads, HEAD_LR))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(WARMUP_RATIO * len(batches)), len(batches))
    trainable = [p for p in model.parameters() if p.requires_grad]
    labels = {task: torch.tensor(d.targets["train"]) for task, d in data.items()}
    model.train()
    for part in frozen:
        part.eval()
    _synchronize(device)
    start = time.perf_counter()
    for task, indices in batches:
        texts = [data[task].texts["train"][i] for i in indices]
        inputs = tokenizer(texts, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt").to(device)
        with _precision(device, bf16):
            loss = F.cross_entropy(model(task, **inputs), labels[task][indices].to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    _synchronize(device)
    return time.perf_counter() - start


def evaluate_plain(model: PlainMultiTask, tokenizer, data: dict, device: torch.device | str = "cpu",
                   bf16: bool = False) -> dict[str, dict[str, float]]:
    """Test accuracy and macro-F1 in eval mode without gradients (scored by the same function as polyhead's)."""
    from polyhead.metrics import classification_metrics

    device = torch.device(device)
    model.eval()
    metrics = {}
    with torch.no_grad():
        for task, d in data.items():
            texts, predicted = d.texts["test"], []
            for i in range(0, len(texts), EVAL_BATCH_SIZE):
                batch = texts[i : i + EVAL_BATCH_SIZE]
                inputs = tokenizer(batch, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt").to(device)
                with _precision(device, bf16):
                    predicted += model(task, **inputs).argmax(dim=-1).tolist()
            metrics[task] = classification_metrics(d.targets["test"], predicted, d.label_names)
    return task_scores(metrics)
