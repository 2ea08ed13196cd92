"""Calibrated (static) int8 with a measured sensitivity search that keeps it within an accuracy budget.

ONNX Runtime's `quantize_static` writes a QDQ graph: weights int8 per output channel,
activations uint8 with ranges fixed by running calibration texts through the fp32 graph.
Only the inputs of matrix products are quantized (their outputs stay fp32, so ONNX Runtime
runs each as one int8 product with an fp32 result, and the residual stream and LayerNorm
never see int8). Task heads stay fp32.

Which products can take int8 depends on the model: an activation with a few large
outlier channels (typical after a transformer's LayerNorm or GELU) loses most of its
resolution to one per-tensor scale. So the search measures instead of guessing:

1. calibrate once (ranges cached in a JSON file, reused by every later step);
2. quantize every product and rank them by how much their input loses to quantization
   (signal-to-quantization-noise ratio of the calibrated activation, from
   `onnxruntime.quantization.qdq_loss_debug`; products sharing an input form one group);
3. bisect on how many of the worst-ranked groups stay fp32 (`nodes_to_exclude`), measuring
   each candidate graph's embeddings against fp32 on probe texts, until the fewest
   exclusions that meet the budget are found.

Quantization is applied to the unfused traced graph, because ONNX Runtime's fused
Attention op has no QDQ form; the session fuses what it can when it loads the graph.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .batching import run_batches
from .calibration import TokenBatchReader
from .cost import compare_outputs, session_runner
from .manifest import QuantizationCost
from .quantize import HEAD_NODE_PREFIX, root_logger_quiet
from .session import make_session
from .threads import get_threads

SENSITIVITY_BATCHES = 4
"""Calibration batches whose activations rank the products (enough for a stable ranking, small in memory)."""


@dataclass
class Int8Budget:
    """The accuracy an int8 graph must keep against fp32, measured on texts it was not calibrated on."""

    min_cosine: float = 0.99
    """Lowest cosine allowed between any text's int8 and fp32 embeddings."""
    mean_cosine: float = 0.998
    """Lowest mean cosine allowed over the texts."""

    def __post_init__(self) -> None:
        for name in ("min_cosine", "mean_cosine"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"Int8Budget.{name} must be in (0, 1], got {value!r}")

    def met_by(self, cost: QuantizationCost) -> bool:
        return cost.min_cosine >= self.min_cosine and cost.mean_cosine >= self.mean_cosine


@dataclass
class StaticInt8Options:
    """How the calibrated int8 graph is made."""

    calibration_texts: int = 256
    """Texts whose activations fix the int8 ranges."""
    probe_texts: int = 128
    """Other texts each candidate graph of the sensitivity search is measured on."""
    budget: Int8Budget = field(default_factory=Int8Budget)
    """The accuracy the search keeps (the recorded cost is then measured on the reference texts)."""
    batch_size: int = 16
    """Texts per calibration batch."""


@dataclass
class StaticInt8Result:
    """What the search chose and what it measured on the probe texts."""

    fp32_nodes: list[str]
    """Matrix products left in fp32."""
    int8_share: float
    """Share of the products' weights (so FLOPs) that run in int8."""
    probe_cost: QuantizationCost
    """The chosen graph against fp32 on the probe texts."""
    met: bool
    """Whether the probe cost is within the budget (False only if no int8 product at all meets it)."""
    trials: list[tuple[int, float, float]] = field(default_factory=list)
    """(products kept fp32, min cosine, mean cosine) of every graph the search measured."""


def candidate_products(model) -> tuple[list[str], dict[str, int]]:
    """The encoder's MatMul nodes (task heads excluded) and the weight size of each (0 for activation x activation)."""
    initializers = {init.name: int(np.prod(init.dims)) for init in model.graph.initializer}
    nodes, sizes = [], {}
    for node in model.graph.node:
        if node.op_type == "MatMul" and not node.name.startswith(HEAD_NODE_PREFIX):
            nodes.append(node.name)
            sizes[node.name] = sum(initializers.get(name, 0) for name in node.input)
    return nodes, sizes


def quantize_products(fp32_path: Path, out_path: Path, reader: TokenBatchReader, cache: Path, exclude: list[str]) -> None:
    """quantize_static of the MatMul inputs of `fp32_path` except `exclude`; ranges from (or into) `cache`."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    reader.rewind()
    with root_logger_quiet():
        quantize_static(
            str(fp32_path),
            str(out_path),
            reader,  # type: ignore[arg-type]  (duck-typed CalibrationDataReader)
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            reduce_range=False,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=str(cache),
            extra_options={
                "OpTypesToExcludeOutputQuantization": ["MatMul"],  # products return fp32: no int8 residual stream
                "DefaultTensorType": onnx.TensorProto.FLOAT,
            },
        )


def input_sensitivity(qdq_path: Path, reader: TokenBatchReader, work: Path) -> dict[str, float]:
    """Per quantized activation: its SQNR in dB (lower = more lost to int8), over a few calibration batches."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_signal_to_quantization_noice_ratio,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    augmented = work / "sensitivity.onnx"
    modify_model_output_intermediate_tensors(str(qdq_path), str(augmented), op_types_for_saving=["QuantizeLinear", "DequantizeLinear"])
    sample = TokenBatchReader([], 0)
    sample.batches = reader.batches[:: max(1, len(reader.batches) // SENSITIVITY_BATCHES)][:SENSITIVITY_BATCHES]
    activations = collect_activations(str(augmented), sample)
    matching = create_activation_matching(activations)
    return {name: compute_signal_to_quantization_noice_ratio(pair["pre_qdq"], pair["post_qdq"]) for name, pair in matching.items()}


def ranked_groups(model, candidates: list[str], sqnr: dict[str, float]) -> list[list[str]]:
    """Candidates grouped by their quantized input, the group losing most to int8 first."""
    inputs = {node.name: list(node.input) for node in model.graph.node}
    groups: dict[str, list[str]] = {}
    score: dict[str, float] = {}
    for name in candidates:
        measured = [(sqnr[t], t) for t in inputs[name] if t in sqnr]
        key = min(measured)[1] if measured else name
        groups.setdefault(key, []).append(name)
        score[key] = min(measured)[0] if measured else math.inf
    return [groups[key] for key in sorted(groups, key=lambda k: score[k])]


def calibrate(
    fp32_path: Path,
    out_path: Path,
    calibration_ids: list[np.ndarray],
    probe_ids: list[np.ndarray],
    pad_id: int,
    outputs: list[str],
    options: StaticInt8Options,
) -> StaticInt8Result:
    """Write to `out_path` the static int8 graph of `fp32_path` with the fewest fp32 products that meet the budget."""
    import onnx

    if not calibration_ids or not probe_ids:
        raise ValueError("static int8 needs calibration and probe texts; got "
                         f"{len(calibration_ids)} calibration and {len(probe_ids)} probe texts")
    model = onnx.load(str(fp32_path), load_external_data=False)
    candidates, sizes = candidate_products(model)
    if not candidates:
        raise ValueError(f"{fp32_path.name} has no matrix product to quantize")
    reader = TokenBatchReader(calibration_ids, pad_id, options.batch_size)
    workers = get_threads()
    reference = run_batches(probe_ids, session_runner(make_session(fp32_path), outputs), batch_size=32, pad_id=pad_id, workers=workers)
    trials: list[tuple[int, float, float]] = []

    with tempfile.TemporaryDirectory(prefix="polyhead-int8-") as tmp:
        work = Path(tmp)
        cache = work / "ranges.json"

        def trial(exclude: list[str]) -> QuantizationCost:
            quantize_products(fp32_path, out_path, reader, cache, exclude)
            got = run_batches(probe_ids, session_runner(make_session(out_path), outputs), batch_size=32, pad_id=pad_id, workers=workers)
            cost = compare_outputs(reference, got, outputs, [], "probe texts")
            trials.append((len(exclude), cost.min_cosine, cost.mean_cosine))
            return cost

        cost = trial([])
        groups: list[list[str]] = []
        best: tuple[int, QuantizationCost] = (0, cost)
        if not options.budget.met_by(cost):
            groups = ranked_groups(model, candidates, input_sensitivity(out_path, reader, work))
            low, high = 0, len(groups)  # excluding `low` groups fails; excluding all of them is fp32
            best = (high, QuantizationCost(len(probe_ids), "probe texts", 1.0, 1.0))
            while high - low > 1:
                middle = (low + high) // 2
                cost = trial([n for g in groups[:middle] for n in g])
                if options.budget.met_by(cost):
                    high, best = middle, (middle, cost)
                else:
                    low = middle
        excluded = [n for g in groups[: best[0]] for n in g]
        if not trials or trials[-1][0] != len(excluded):  # the last graph written is not the chosen one
            trial(excluded)
    total = sum(sizes.values()) or 1
    share = sum(size for name, size in sizes.items() if name not in set(excluded)) / total
    return StaticInt8Result(excluded, share, best[1], options.budget.met_by(best[1]), trials)
