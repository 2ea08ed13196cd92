"""The int8 graph of an export: made (static or dynamic) and then measured on reference texts.

Static (the default) is calibrated on the model's own task data where it records a built-in
dataset, else on Rotten Tomatoes train texts, and searched to stay within the budget on
probe texts; either kind's cost is then measured on the reference texts (validation texts
by default), which neither the calibration nor the search saw, and stored in the manifest.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .calibration import calibration_set
from .cost import measure_cost
from .manifest import GraphInfo, OnnxManifest
from .quantize import quantize_graph
from .session import make_session
from .static_int8 import calibrate

INT8_FILE = "model_int8.onnx"


def int8_graph(
    fp32_path: Path, unfused: Path, manifest: OnnxManifest, tokenizer, options, reference: tuple[list[str], str]
) -> GraphInfo:
    """Write `INT8_FILE` beside `fp32_path` as `options` (an ExportOptions) asks; its GraphInfo carries the cost on `reference` (texts, source)."""
    int8_path = fp32_path.parent / INT8_FILE
    static = options.int8_method == "static"
    if static:
        texts = calibration_set(options.calibration_data, options.int8.calibration_texts, options.int8.probe_texts)
        result = calibrate(
            unfused, int8_path, tokenizer.tokenize(texts.calibration).ids, tokenizer.tokenize(texts.probe).ids,
            tokenizer.pad_id, manifest.outputs, options.int8,
        )
    else:
        quantize_graph(fp32_path, int8_path)
    texts_for_cost, source = reference
    cost = measure_cost(
        make_session(fp32_path), make_session(int8_path), tokenizer.tokenize(texts_for_cost).ids, tokenizer.pad_id,
        manifest.outputs, manifest.tasks, source,
    )
    fp32_info = manifest.graphs["fp32"]
    if static:
        cost.method = "static"
        cost.calibration = f"{len(texts.calibration)} texts ({texts.source}); search on {len(texts.probe)} more"
        cost.fp32_nodes = result.fp32_nodes
        cost.int8_share = round(result.int8_share, 4)
        cost.budget = asdict(options.int8.budget)
        return GraphInfo(file=INT8_FILE, precision="int8", optimized=False, cost=cost)
    return GraphInfo(file=INT8_FILE, precision="int8", optimized=fp32_info.optimized, fused_operators=fp32_info.fused_operators, cost=cost)
