"""OnnxModel: an exported MultiTaskModel, with MultiTaskModel's `predict()` on ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..encoder import check_texts
from ..model import MultiTaskModel, TaskPrediction, TaskSpec, predictions_from_outputs, split_pairs
from .manifest import OnnxManifest, probabilities_output
from .onnx_encoder import OnnxEncoder


def has_task_heads(manifest: OnnxManifest) -> bool:
    """Whether an export holds tasks (of one text or of pairs), not only an encoder."""
    return bool(manifest.tasks or manifest.pair_tasks)


class OnnxModel:
    """Embeddings and every task's outputs from one run of the exported graph (pair tasks: a second, small graph)."""

    def __init__(self, path: str | Path, *, backend: str = "onnx") -> None:
        self.encoder = OnnxEncoder(path, backend=backend)
        manifest = self.encoder.manifest
        if not has_task_heads(manifest):
            raise ValueError(f"{path} holds an exported encoder without task heads; load it with OnnxEncoder")
        self.tasks: dict[str, TaskSpec] = {t["name"]: TaskSpec.from_dict(t) for t in [*manifest.tasks, *manifest.pair_tasks]}
        self._outputs = {t["name"]: probabilities_output(i) for i, t in enumerate(manifest.tasks)}
        self._pair_session = None

    # The same task bookkeeping as the PyTorch model's, so both answer alike.
    task_names = MultiTaskModel.task_names
    answering_tasks = MultiTaskModel.answering_tasks
    pair_tasks = MultiTaskModel.pair_tasks
    _check_tasks = MultiTaskModel._check_tasks
    _check_pair_tasks = MultiTaskModel._check_pair_tasks

    def predict_probabilities(
        self, texts: list[str], tasks: list[str] | None = None, batch_size: int = 32, *, backend: str | None = None
    ) -> dict[str, torch.Tensor]:
        """Each task's outputs (class probabilities, values, label probabilities), shape (len(texts), outputs), in input order."""
        names = self._check_tasks(tasks)
        outputs = self.encoder.run_texts(check_texts(texts), batch_size, backend, False, None)
        return {name: torch.from_numpy(np.ascontiguousarray(outputs[self._outputs[name]])) for name in names}

    def predict(
        self, texts: list[str], tasks: list[str] | None = None, batch_size: int = 32, *, backend: str | None = None
    ) -> list[dict[str, TaskPrediction]]:
        """Per text and task, the kind's answer, as `MultiTaskModel.predict` gives it."""
        items = check_texts(texts)
        if not items:
            return []
        return predictions_from_outputs(self.predict_probabilities(items, tasks, batch_size, backend=backend), self.tasks)

    def predict_pairs(
        self, pairs: list[tuple[str, str]], tasks: list[str] | None = None, batch_size: int = 32, *, backend: str | None = None
    ) -> list[dict[str, TaskPrediction]]:
        """Per (text, text) pair, each pair task's answer, as `MultiTaskModel.predict_pairs` gives it."""
        from .pair_graph import run_pair_graph
        from .session import make_session

        names = self._check_pair_tasks(tasks)
        if not pairs or not names:
            return []
        manifest = self.encoder.manifest
        if self._pair_session is None:
            self._pair_session = make_session(self.encoder.path / manifest.pair_graph.file)
        columns = [self.encoder.encode(texts, batch_size=batch_size, backend=backend, show_progress=False) for texts in split_pairs(pairs)]
        outputs = run_pair_graph(self._pair_session, *columns, len(manifest.pair_tasks))
        by_task = {t["name"]: torch.from_numpy(o) for t, o in zip(manifest.pair_tasks, outputs)}
        return predictions_from_outputs({name: by_task[name] for name in names}, self.tasks)

    def encode(self, texts, batch_size: int = 32, **options):
        """The embeddings alone, as `OnnxEncoder.encode`."""
        return self.encoder.encode(texts, batch_size=batch_size, **options)


def load_exported(path: str | Path, backend: str = "onnx") -> OnnxEncoder | OnnxModel:
    """An OnnxModel when the export has task heads, else an OnnxEncoder."""
    encoder = OnnxEncoder(path, backend=backend)
    return OnnxModel(path, backend=backend) if has_task_heads(encoder.manifest) else encoder
