"""MultiTaskModel: one SentenceEncoder shared by named task heads; save, load, predict."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .encoder import SentenceEncoder, check_texts
from .fileio import atomic_directory, read_json, write_json
from .task_spec import MODEL_CONFIG, TaskSpec
from .model_card import write_model_card
from .modes import eval_mode

HEADS_WEIGHTS = "heads.safetensors"
FORMAT_VERSION = 1


@dataclass
class MultiTaskOutput:
    embeddings: torch.Tensor
    logits: dict[str, torch.Tensor]


class TaskPrediction:
    """One text's prediction for one task: its kind's answer, readable as attributes (`.label`, `.value`, `.labels`)."""

    def __init__(self, answer: dict) -> None:
        self._answer = answer

    def __getattr__(self, key: str):
        try:
            return self.__dict__["_answer"][key]
        except KeyError:
            raise AttributeError(f"this prediction has no {key!r}; it has {', '.join(self.__dict__['_answer'])}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskPrediction) and other._answer == self._answer

    def __repr__(self) -> str:
        return f"TaskPrediction({self._answer!r})"

    def to_dict(self) -> dict:
        return dict(self._answer)


def predictions_from_outputs(outputs: dict[str, torch.Tensor], tasks: dict[str, TaskSpec]) -> list[dict[str, TaskPrediction]]:
    """Per text, per task: the kind's answer (a label and probabilities, values, a label set)."""
    names = list(outputs)
    if not names:
        return []
    rows = len(next(iter(outputs.values())))
    tables = {name: outputs[name].detach().float().cpu().tolist() for name in names}
    return [{name: TaskPrediction(tasks[name].task_kind.answer(tables[name][row], tasks[name])) for name in names} for row in range(rows)]


def split_pairs(pairs: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The first and the second texts of (text, text) pairs, each checked as `encode` checks texts."""
    odd = next((i for i, pair in enumerate(pairs) if isinstance(pair, str) or len(pair) != 2), None)
    if odd is not None:
        raise ValueError(f"pairs[{odd}] is not a pair of two texts: {pairs[odd]!r}")
    return check_texts([a for a, _ in pairs]), check_texts([b for _, b in pairs])


class TaskOutputs(nn.Module):
    """A task's head followed by its kind's outputs: what an exported graph computes per task.

    It takes one embedding per text column: one for most kinds, the pair's two for pair kinds.
    """

    def __init__(self, head: nn.Module, spec: TaskSpec) -> None:
        super().__init__()
        self.head = head
        self.spec = spec

    def forward(self, *embeddings: torch.Tensor) -> torch.Tensor:
        return self.spec.task_kind.answer_tensor(self.head, list(embeddings), self.spec)


class MultiTaskModel(nn.Module):
    """A shared encoder and one head per task; a batch pays only for the heads it asks for."""

    def __init__(self, encoder: SentenceEncoder, tasks: list[TaskSpec]) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("a MultiTaskModel needs at least one task")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        self.encoder = encoder
        self.tasks: dict[str, TaskSpec] = {t.name: t for t in tasks}
        self.heads = nn.ModuleDict(
            {t.name: t.task_kind.make_head(t.head, encoder.embedding_dim, t.labels) for t in tasks}
        )
        self.heads.to(encoder.device)
        self.adapter_settings: dict[str, dict] = {}
        """Per-task LoRA adapters in the encoder: name -> rank, alpha, dropout (see polyhead.task_adapters)."""
        self._group_encoders: dict[str | None, tuple] = {}

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks)

    @property
    def answering_tasks(self) -> list[str]:
        """The tasks that answer one text (a pair objective such as `contrastive` trains the embedding instead)."""
        return [name for name, spec in self.tasks.items() if spec.task_kind.answers_single_texts]

    def _check_tasks(self, tasks: list[str] | None) -> list[str]:
        if tasks is None:
            return self.answering_tasks
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown:
            raise KeyError(f"unknown task(s) {unknown}; the model has {self.task_names}")
        silent = [t for t in tasks if t not in self.answering_tasks]
        if silent:
            raise KeyError(f"task(s) {silent} train the embedding from text pairs and answer no single text; "
                           "use the embeddings (encode) for them")
        return list(tasks)

    def add_task_adapter(self, task: str, rank: int = 8, alpha: float = 16.0, dropout: float = 0.1) -> int:
        """Give `task` its own LoRA adapter in the shared encoder (the other tasks keep the encoder as it is)."""
        from .task_adapters import adapters_off, inject_lora

        added = inject_lora(self.encoder.backbone, rank, alpha, dropout, task)
        adapters_off(self.encoder.backbone)
        self.adapter_settings[task] = {"rank": rank, "alpha": alpha, "dropout": dropout}
        self.tasks[task].adapter = task
        return added

    def load_task_adapters(self, path: Path, settings: dict[str, dict] | None) -> None:
        """The per-task adapters a saved model at `path` records (`settings`: its polyhead_model.json's `adapters`)."""
        if not settings:
            return
        from .task_adapters import load_adapters

        load_adapters(self.encoder.backbone, settings, path, self.device)
        self.adapter_settings = dict(settings)

    def routed(self, task: str):
        """The encoder as `task` sees it: with its adapter on, or with every adapter off."""
        if not self.adapter_settings:
            return contextlib.nullcontext()
        from .task_adapters import use_adapter

        return use_adapter(self.encoder.backbone, self.tasks[task].adapter)

    def group_encoder(self, adapter: str | None):
        """For inference: the encoder a group of tasks sees as plain weights (its adapter merged, or none), so every
        fast path applies. Built on first use and again whenever the weights have changed since (training)."""
        if not self.adapter_settings:
            return self.encoder
        from .modes import weights_key
        from .task_adapters import plain_copy

        key = weights_key(self.encoder)
        cached = self._group_encoders.get(adapter)
        if cached is None or cached[0] != key:
            with torch.inference_mode(False), torch.no_grad():  # ordinary tensors, even when called under inference mode
                encoder = copy.deepcopy(self.encoder)
                encoder.backbone = plain_copy(self.encoder.backbone, adapter)
            cached = self._group_encoders[adapter] = (key, encoder.eval())
        return cached[1]

    def adapter_groups(self, tasks: list[str]) -> dict[str | None, list[str]]:
        """The tasks grouped by the adapter their texts go through: one encoder pass per group."""
        groups: dict[str | None, list[str]] = {}
        for name in tasks:
            groups.setdefault(self.tasks[name].adapter, []).append(name)
        return groups

    @property
    def encoder_groups(self) -> list[str | None]:
        """The encoder passes that serve every task: the shared encoder as it is, then each adapter."""
        return [None, *self.adapter_settings]

    def grouped_outputs(self, columns: list[torch.Tensor], tasks: list[str], normalize: bool) -> dict[str, torch.Tensor]:
        """Task outputs from rows that hold one embedding per encoder group side by side (the server's batches);
        `columns`: such rows per text column (one, or two for the texts of pairs)."""
        dim, outputs = self.encoder.embedding_dim, {}
        for adapter, group in self.adapter_groups(tasks).items():
            index = self.encoder_groups.index(adapter)
            embeddings = [rows[:, index * dim:(index + 1) * dim] for rows in columns]
            embeddings = [F.normalize(e, p=2, dim=-1) if normalize else e for e in embeddings]
            outputs.update({name: self.tasks[name].task_kind.answer_tensor(self.heads[name], embeddings, self.tasks[name])
                            for name in group})
        return {name: outputs[name] for name in tasks}

    @property
    def pair_tasks(self) -> list[str]:
        """The tasks that answer a pair of texts (`predict_pairs`, the server's /v1/predict_pairs)."""
        return [name for name, spec in self.tasks.items() if spec.task_kind.answers_pairs]

    def _check_pair_tasks(self, tasks: list[str] | None) -> list[str]:
        names = self.pair_tasks if tasks is None else list(tasks)
        wrong = [t for t in names if t not in self.pair_tasks]
        if wrong:
            raise KeyError(f"task(s) {wrong} do not answer text pairs; pair tasks: {self.pair_tasks}")
        return names

    def forward(self, texts_or_batch: list[str] | dict[str, torch.Tensor], tasks: list[str] | None = None) -> MultiTaskOutput:
        """Embeddings and the logits of the requested tasks (all when `tasks` is None)."""
        names = self._check_tasks(tasks)
        if isinstance(texts_or_batch, dict):
            batch = texts_or_batch
        else:
            batch = self.encoder.tokenize(check_texts(texts_or_batch))
        batch = {k: v.to(self.device) for k, v in batch.items()}
        if not self.adapter_settings:
            embeddings = self.encoder(batch["input_ids"], batch["attention_mask"])
            return MultiTaskOutput(embeddings, self.head_logits(embeddings, names))
        from .task_adapters import use_adapter

        passes = {}  # adapter -> embeddings: one pass per group, and the shared encoder's for `embeddings`
        for adapter in dict.fromkeys([None, *self.adapter_groups(names)]):
            with use_adapter(self.encoder.backbone, adapter):
                passes[adapter] = self.encoder(batch["input_ids"], batch["attention_mask"])
        logits = {name: self.heads[name](passes[self.tasks[name].adapter]) for name in names}
        return MultiTaskOutput(passes[None], logits)

    def head_logits(self, embeddings: torch.Tensor, tasks: list[str]) -> dict[str, torch.Tensor]:
        return {name: self.heads[name](embeddings) for name in tasks}

    def task_outputs(self, embeddings: torch.Tensor, tasks: list[str]) -> dict[str, torch.Tensor]:
        """Each task's answer in its own terms (class probabilities, values in the target's units, label probabilities)."""
        return {name: self.tasks[name].task_kind.answer_tensor(self.heads[name], [embeddings], self.tasks[name]) for name in tasks}

    def output_modules(self, pairs: bool = False) -> dict[str, TaskOutputs]:
        """Per task that answers one text (or, with `pairs`, two), head and outputs as one module (the exporter traces these)."""
        return {name: TaskOutputs(self.heads[name], self.tasks[name]) for name in (self.pair_tasks if pairs else self.answering_tasks)}

    @torch.inference_mode()
    def predict_outputs(self, texts: list[str], tasks: list[str] | None = None, batch_size: int = 32, **encode_options) -> dict[str, torch.Tensor]:
        """Per task, its outputs for every text, shape (len(texts), outputs), in input order."""
        names = self._check_tasks(tasks)
        outputs = {}
        with eval_mode(self):
            for adapter, group in self.adapter_groups(names).items():
                embeddings = self.group_encoder(adapter).encode(texts, batch_size=batch_size, output="torch", show_progress=False,
                                                                **encode_options)
                outputs.update(self.task_outputs(embeddings.to(self.device), group))
        return {name: outputs[name] for name in names}

    predict_probabilities = predict_outputs
    """The outputs under their classification name: class probabilities for a classification task."""

    def predict(self, texts: list[str], tasks: list[str] | None = None, batch_size: int = 32, **encode_options) -> list[dict[str, TaskPrediction]]:
        """Per text and task, the kind's answer: a label with probabilities, values, or a set of labels."""
        items = check_texts(texts)
        if not items:
            return []
        return predictions_from_outputs(self.predict_outputs(items, tasks, batch_size, **encode_options), self.tasks)

    @torch.inference_mode()
    def predict_pairs(self, pairs: list[tuple[str, str]], tasks: list[str] | None = None, batch_size: int = 32,
                      **encode_options) -> list[dict[str, TaskPrediction]]:
        """Per (text, text) pair, each pair task's answer: a label with probabilities, or a similarity."""
        names = self._check_pair_tasks(tasks)
        if not pairs or not names:
            return []
        firsts, seconds = split_pairs(pairs)
        outputs = {}
        with eval_mode(self):
            for adapter, group in self.adapter_groups(names).items():
                encoder = self.group_encoder(adapter)
                columns = [encoder.encode(texts, batch_size=batch_size, output="torch", show_progress=False, **encode_options).to(self.device)
                           for texts in (firsts, seconds)]
                outputs.update({name: self.tasks[name].task_kind.answer_tensor(self.heads[name], columns, self.tasks[name])
                                for name in group})
        return predictions_from_outputs({name: outputs[name] for name in names}, self.tasks)

    # ------------------------------------------------------------------ save / load
    def config_dict(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "polyhead_version": __version__,
            "embedding_dim": self.encoder.embedding_dim,
            "pooling": self.encoder.pooling_mode,
            "normalize": self.encoder.normalize,
            "truncation": self.encoder.truncation,
            "tasks": [t.to_dict() for t in self.tasks.values()],
            **({"adapters": self.adapter_settings} if self.adapter_settings else {}),
        }

    def save(self, path: str | Path) -> Path:
        """One directory: the encoder in sentence-transformers layout, heads and task labels beside it."""
        path = Path(path)
        with atomic_directory(path) as tmp:
            if self.adapter_settings:  # the shared weights as they are, the per-task adapters beside them
                from .task_adapters import ADAPTERS_WEIGHTS, adapter_weights, without_adapters

                adapted = self.encoder.backbone
                self.encoder.backbone = without_adapters(adapted)
                try:
                    self.encoder.save_to(tmp)
                finally:
                    self.encoder.backbone = adapted
                save_file(adapter_weights(adapted), str(tmp / ADAPTERS_WEIGHTS))
            else:  # a copy saved over an earlier one (a run's best model) links the backbone file if it is unchanged
                self.encoder.save_to(tmp, previous=path if path.is_dir() else None)
            weights = {k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()}
            save_file(weights, str(tmp / HEADS_WEIGHTS))
            write_json(tmp / MODEL_CONFIG, self.config_dict())
            write_model_card(tmp, self.config_dict(), self.encoder.source, model_name=path.name)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> "MultiTaskModel":
        path = Path(path)
        config_file = path / MODEL_CONFIG
        if not config_file.is_file():
            what = "no such directory" if not path.exists() else f"not a polyhead model directory (no {MODEL_CONFIG})"
            raise FileNotFoundError(f"{path}: {what}")
        config = read_json(config_file)
        if config.get("format") != FORMAT_VERSION:
            raise ValueError(f"{config_file}: unsupported format {config.get('format')!r}")
        encoder = SentenceEncoder(path, device=device, truncation=config.get("truncation", "head"))
        model = cls(encoder, [TaskSpec.from_dict(t) for t in config["tasks"]])
        model.load_task_adapters(path, config.get("adapters"))
        model.heads.load_state_dict(load_file(str(path / HEADS_WEIGHTS), device=str(model.device)))
        model.eval()
        return model


def load(path: str | Path, device: str | torch.device | None = None) -> MultiTaskModel:
    """Load a model saved by `MultiTaskModel.save` (or a training run's final model)."""
    return MultiTaskModel.load(path, device=device)
