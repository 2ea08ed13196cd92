"""`export_onnx`: a SentenceEncoder or MultiTaskModel -> a directory ONNX Runtime can serve alone.

The directory holds `model.onnx` (fp32: transformer, pooling, normalization, task heads),
optionally `model_int8.onnx` (calibrated static int8 by default, see `static_int8.py`),
`pair_heads.onnx` for pair tasks (see `pair_graph.py`), the tokenizer files and `polyhead_onnx.json`. The graph is checked against PyTorch before it is
written; the directory appears only when complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..fileio import atomic_directory
from ..modes import eval_mode
from .graph import ExportGraph, tokenizer_batch, trace_to_onnx
from .manifest import GraphInfo, OnnxManifest
from .optimize import fuse_transformer_ops, max_difference
from .session import make_session
from .static_int8 import StaticInt8Options

FP32_FILE = "model.onnx"
DEFAULT_OPSET = 17
INT8_METHODS = ("static", "dynamic")
TOLERANCE = 1e-4
"""Largest difference from PyTorch allowed, relative to the output's magnitude (at least 1)."""

# Sentences of different lengths for checking the graph against PyTorch.
CHECK_TEXTS = [
    "Fine.",
    "The acting is superb, but the script never finds its footing.",
    "A quiet, patient film about grief that earns every one of its small revelations, "
    "even when the pacing drags in the middle hour and the score insists too much.",
    "Not worth the ticket.",
    "An ambitious mess: gorgeous to look at, impossible to care about, and at least "
    "twenty minutes too long.",
]


class ExportError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model's outputs."""


@dataclass
class ExportOptions:
    """How `export_onnx` builds the graph."""

    opset: int = DEFAULT_OPSET
    """ONNX opset version (17 has LayerNormalization as one op)."""
    optimize: bool = True
    """Apply ONNX Runtime's transformer fusions (kept only if the outputs still match)."""
    quantize: bool = False
    """Also write an int8 graph and measure its accuracy cost (see `reference_texts`)."""
    reference_texts: list[str] = field(default_factory=list)
    """Texts the int8 cost is measured on; empty means the built-in Rotten Tomatoes validation texts."""
    reference_source: str = ""
    """Where `reference_texts` came from, for the report."""
    int8_method: str = "static"
    """`static`: ranges calibrated on real texts, fp32 kept where the sensitivity search says (the default);
    `dynamic`: ranges per batch at run time, every product int8, no accuracy budget."""
    int8: StaticInt8Options = field(default_factory=StaticInt8Options)
    """Calibration and accuracy budget of the static graph."""
    calibration_data: list[str] = field(default_factory=list)
    """Built-in datasets to calibrate on; empty means the model's own tasks' data, else Rotten Tomatoes."""

    def __post_init__(self) -> None:
        if self.int8_method not in INT8_METHODS:
            raise ValueError(f"ExportOptions.int8_method must be one of {', '.join(INT8_METHODS)}, got {self.int8_method!r}")


@dataclass
class ExportResult:
    directory: Path
    manifest: OnnxManifest


@dataclass
class ExportParts:
    """What an export traces: the encoder, and the tasks' heads with their outputs."""

    encoder: nn.Module
    heads: dict[str, nn.Module] = field(default_factory=dict)
    """Tasks that answer one text: head + outputs on the embedding (the main graph)."""
    tasks: list[dict] = field(default_factory=list)
    """[{name, kind, labels, state, head}] of `heads`, in output order."""
    pair_heads: dict[str, nn.Module] = field(default_factory=dict)
    """Tasks that answer two texts: head + outputs on both embeddings (the pair graph)."""
    pair_tasks: list[dict] = field(default_factory=list)


def model_parts(model: object) -> ExportParts:
    """The parts of a SentenceEncoder, MultiTaskModel or model directory that an export traces."""
    from ..encoder import SentenceEncoder
    from ..model import MODEL_CONFIG, MultiTaskModel

    if isinstance(model, (str, Path)):
        path = Path(model)
        if (path / MODEL_CONFIG).is_file():
            model = MultiTaskModel.load(path, device="cpu")
        else:
            model = SentenceEncoder(model, device="cpu")
    if isinstance(model, MultiTaskModel):
        if model.adapter_settings:
            from ..errors import InputError

            raise InputError(f"task(s) {', '.join(model.adapter_settings)} run through their own adapters, and an exported graph "
                             "has one encoder pass; serve this model with `polyhead serve` (it routes each task through its "
                             "adapter), or train the new task with protect.strategy isolate, rehearsal or distillation to export it")
        def described(names: list[str]) -> list[dict]:
            return [model.tasks[name].to_dict() | {"data": None} for name in names]

        return ExportParts(model.encoder, dict(model.output_modules()), described(model.answering_tasks),
                           dict(model.output_modules(pairs=True)), described(model.pair_tasks))
    if isinstance(model, SentenceEncoder):
        return ExportParts(model)
    raise TypeError(f"cannot export a {type(model).__name__}; pass a SentenceEncoder, a MultiTaskModel or a model directory")


def export_onnx(model: object, output_dir: str | Path, options: ExportOptions | None = None) -> ExportResult:
    """Export `model` (an object or a directory) to `output_dir`, replacing it only when complete."""
    options = options or ExportOptions()
    if options.quantize and options.int8_method == "static" and not options.calibration_data:
        from .calibration import task_data_names

        options = replace(options, calibration_data=task_data_names(model))
    parts = model_parts(model)
    with atomic_directory(output_dir) as tmp:
        manifest = write_export(parts.encoder, parts.heads, parts.tasks, tmp, options, parts.pair_heads, parts.pair_tasks)
    return ExportResult(Path(output_dir), manifest)


def write_export(encoder, heads: dict[str, nn.Module], tasks: list[dict], directory: Path, options: ExportOptions,
                 pair_heads: dict[str, nn.Module] | None = None, pair_tasks: list[dict] | None = None) -> OnnxManifest:
    """Trace, fuse, check and (optionally) quantize into an existing empty directory."""
    graph = ExportGraph(encoder, heads)
    tokenizer = encoder.text_tokenizer
    raw = directory / "raw.onnx"
    with eval_mode(graph):
        trace_to_onnx(graph, tokenizer, raw, options.opset)
        batches, expected = _reference_outputs(graph, tokenizer)
    fp32 = directory / FP32_FILE
    info = _choose_fp32_graph(encoder, raw, fp32, batches, expected, options.optimize)
    unfused = raw if raw.exists() else fp32  # static int8 quantizes the unfused graph (fused Attention has no QDQ form)
    encoder.tokenizer.save_pretrained(directory)
    manifest = OnnxManifest(
        embedding_dim=encoder.embedding_dim,
        max_seq_length=encoder.max_seq_length,
        pooling=encoder.pooling_mode,
        normalize=bool(encoder.normalize),
        pad_token_id=tokenizer.pad_id,
        opset=options.opset,
        source=str(getattr(encoder, "source", "")),
        outputs=graph.output_names,
        tasks=tasks,
        graphs={"fp32": info},
        polyhead_version=__version__,
    )
    if pair_heads:
        manifest.pair_tasks = list(pair_tasks or [])
        manifest.pair_graph = _pair_graph(pair_heads, expected[0][0], directory, options.opset)
    if options.quantize:
        from .int8_graph import int8_graph

        reference = (options.reference_texts, options.reference_source or "given texts") if options.reference_texts else default_reference_texts()
        manifest.graphs["int8"] = int8_graph(fp32, unfused, manifest, tokenizer, options, reference)
    if raw.exists():
        raw.unlink()
    manifest.save(directory)
    return manifest


def _pair_graph(pair_heads: dict[str, nn.Module], embeddings: np.ndarray, directory: Path, opset: int) -> GraphInfo:
    """The pair tasks' graph, checked against PyTorch on pairs of the check sentences' embeddings."""
    from .pair_graph import PAIR_FILE, write_pair_graph

    difference = write_pair_graph(pair_heads, embeddings, directory / PAIR_FILE, opset)
    if difference > TOLERANCE:
        raise ExportError(f"the pair tasks' ONNX graph differs from PyTorch by {difference:.3g}")
    return GraphInfo(file=PAIR_FILE, precision="fp32", optimized=False, max_abs_diff=difference)


def _reference_outputs(graph: ExportGraph, tokenizer) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[list[np.ndarray]]]:
    """Check batches (one padded batch of several lengths, one single text) and PyTorch's outputs."""
    device = next(graph.parameters()).device
    batches, expected = [], []
    for texts in (CHECK_TEXTS, CHECK_TEXTS[2:3]):
        input_ids, mask = tokenizer_batch(tokenizer, texts)
        with torch.inference_mode():
            outputs = graph(input_ids.to(device), mask.to(device))
        batches.append((input_ids.numpy(), mask.numpy()))
        expected.append([o.float().cpu().numpy() for o in outputs])
    return batches, expected


def _choose_fp32_graph(encoder, raw: Path, out: Path, batches, expected, optimize: bool) -> GraphInfo:
    """The fused graph if it matches PyTorch, else the plain traced one; ExportError if neither does."""
    scale = max(1.0, max(float(np.max(np.abs(a))) for outputs in expected for a in outputs))
    if optimize:
        config = encoder.backbone.config
        heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0)
        fused = fuse_transformer_ops(raw, out, int(heads), encoder.hidden_size)
        difference = max_difference(make_session(out), batches, expected)
        if difference <= TOLERANCE * scale:
            return GraphInfo(file=out.name, precision="fp32", optimized=True, fused_operators=fused.fused_operators, max_abs_diff=difference)
        out.unlink()
    difference = max_difference(make_session(raw), batches, expected)
    if difference > TOLERANCE * scale:
        raise ExportError(f"the traced ONNX graph differs from PyTorch by {difference:.3g}; this architecture does not export cleanly")
    raw.rename(out)
    return GraphInfo(file=out.name, precision="fp32", optimized=False, max_abs_diff=difference)


def default_reference_texts() -> tuple[list[str], str]:
    """The built-in Rotten Tomatoes sentiment validation texts (500), else the check sentences."""
    import warnings

    from ..datasets import rotten_tomatoes
    from ..errors import MissingPackageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            texts = rotten_tomatoes("sentiment").validation.texts[:500]
    except (MissingPackageError, FileNotFoundError):
        return list(CHECK_TEXTS), "built-in check sentences"
    return texts, "rotten_tomatoes:sentiment validation"
