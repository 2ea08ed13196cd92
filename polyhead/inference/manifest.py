"""`polyhead_onnx.json`: what an exported directory holds, so it loads without the original model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..fileio import read_json, write_json

MANIFEST = "polyhead_onnx.json"
FORMAT_VERSION = 1
INPUT_NAMES = ("input_ids", "attention_mask")
EMBEDDING_OUTPUT = "embedding"
POOLED_OUTPUT = "pooled_embedding"


def select_embedding(outputs: dict, normalize: bool | None, graph_normalizes: bool):
    """The embedding a caller asked for from a graph's outputs.

    A normalizing graph also outputs the pooled vector before normalization, so
    `normalize=False` takes that; a graph that does not normalize is normalized here
    when `normalize=True`; None takes the graph's own choice.
    """
    if normalize is False and graph_normalizes:
        return outputs[POOLED_OUTPUT]
    if normalize and not graph_normalizes:
        import numpy as np

        from ..similarity import unit_rows

        return unit_rows(outputs[EMBEDDING_OUTPUT]).astype(np.float32)
    return outputs[EMBEDDING_OUTPUT]


def probabilities_output(task_index: int) -> str:
    """Graph output name of the task at `task_index` (task names may hold any character)."""
    return f"probabilities_{task_index}"


@dataclass
class QuantizationCost:
    """How far the int8 graph's outputs are from the fp32 graph's, measured when it was made."""

    texts: int
    """Number of reference texts compared."""
    source: str
    """Where the reference texts came from."""
    min_cosine: float
    """Lowest cosine similarity between an int8 embedding and its fp32 embedding."""
    mean_cosine: float
    """Mean of those cosine similarities."""
    label_agreement: dict[str, float] = field(default_factory=dict)
    """Per task with labels: fraction of texts whose predicted label is the same as fp32's."""
    label_changes: dict[str, float] = field(default_factory=dict)
    """Per task with labels: fraction of texts whose predicted label (or label set) differs from fp32's."""
    method: str = "dynamic"
    """`static` (calibrated ranges, `static_int8.py`) or `dynamic` (ranges per batch at run time)."""
    calibration: str = ""
    """Static only: the texts the activation ranges were calibrated on."""
    fp32_nodes: list[str] = field(default_factory=list)
    """Static only: matrix products the sensitivity search kept in fp32 to stay within the budget."""
    int8_share: float | None = None
    """Static only: share of the graph's matrix-product weights (so of its FLOPs) that run in int8."""
    budget: dict[str, float] = field(default_factory=dict)
    """Static only: the accuracy budget searched for (`min_cosine`, `mean_cosine`)."""

    @property
    def loss(self) -> float:
        """One number to hold against `--max-int8-loss`: the larger of 1 - min cosine and any task's label-change share."""
        return max([1.0 - self.min_cosine, *self.label_changes.values()])

    @property
    def budget_met(self) -> bool | None:
        """Static only: whether the budget searched for on the probe texts also holds on the reference texts."""
        if not self.budget:
            return None
        return self.min_cosine >= self.budget["min_cosine"] and self.mean_cosine >= self.budget["mean_cosine"]

    def within(self, max_loss: float) -> bool:
        """True when the measured loss is at most `max_loss`."""
        return self.loss <= max_loss

    def summary(self) -> str:
        text = (
            f"{self.method} int8 vs fp32 on {self.texts} texts ({self.source}): min cosine {self.min_cosine:.4f}, "
            f"mean cosine {self.mean_cosine:.5f}"
        )
        for task, share in self.label_changes.items():
            text += f"; {task}: label changed for {share:.1%}"
        if not self.label_changes:
            for task, agreement in self.label_agreement.items():
                text += f"; {task}: same label for {agreement:.1%}"
        if self.int8_share is not None:
            text += f"; {self.int8_share:.0%} of matrix-product weights in int8, {len(self.fp32_nodes)} products kept fp32"
        return text


@dataclass
class GraphInfo:
    """One ONNX graph file of the directory."""

    file: str
    """File name inside the directory."""
    precision: str
    """`fp32` or `int8`."""
    optimized: bool
    """True when ONNX Runtime's transformer fusions (attention, LayerNorm, GELU) were applied."""
    fused_operators: dict[str, int] = field(default_factory=dict)
    """Fused operator counts reported by the optimizer."""
    max_abs_diff: float | None = None
    """fp32 graph only: largest difference from PyTorch's outputs on the check texts."""
    cost: QuantizationCost | None = None
    """int8 graph only: its measured accuracy cost."""


@dataclass
class OnnxManifest:
    """Everything needed to run an exported graph: tokenizer settings, outputs, tasks, graphs."""

    embedding_dim: int
    max_seq_length: int
    pooling: str
    normalize: bool
    """Whether `embedding` is L2-normalized inside the graph (then `pooled_embedding` is the raw one)."""
    pad_token_id: int
    opset: int
    source: str
    """The model directory or name the graph was exported from."""
    outputs: list[str]
    tasks: list[dict] = field(default_factory=list)
    """[{name, labels}] in output order; empty for a plain encoder."""
    graphs: dict[str, GraphInfo] = field(default_factory=dict)
    pair_tasks: list[dict] = field(default_factory=list)
    """The tasks that answer two texts (pair_classification, pair_regression), in the pair graph's output order."""
    pair_graph: GraphInfo | None = None
    """The pair tasks' graph (their heads on two embeddings), beside the main one; None without pair tasks."""
    format: int = FORMAT_VERSION
    polyhead_version: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "OnnxManifest":
        graphs = {}
        for name, info in data.get("graphs", {}).items():
            cost = info.get("cost")
            graphs[name] = GraphInfo(**{**info, "cost": QuantizationCost(**cost) if cost else None})
        pair_graph = GraphInfo(**data["pair_graph"]) if data.get("pair_graph") else None
        return cls(**{**data, "graphs": graphs, "pair_graph": pair_graph})

    def save(self, directory: Path) -> None:
        write_json(directory / MANIFEST, self.to_dict())

    @classmethod
    def load(cls, directory: str | Path) -> "OnnxManifest":
        path = Path(directory) / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is not an exported polyhead ONNX directory (no {MANIFEST})")
        data = read_json(path)
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported format {data.get('format')!r}")
        return cls.from_dict(data)


def is_exported_dir(path: str | Path) -> bool:
    """True for a directory written by `polyhead export`."""
    return (Path(path) / MANIFEST).is_file()
