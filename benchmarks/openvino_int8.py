"""OpenVINO + NNCF post-training int8 for the built-in encoder, next to ONNX Runtime and sentence-transformers.

    .venv/bin/pip install -e '.[openvino]'       # openvino and nncf: an optional extra, not a dependency
    .venv/bin/python benchmarks/openvino_int8.py --json openvino.json

openvino and nncf are imported here only; polyhead itself never needs them.

What it does, on the built-in all-MiniLM-L6-v2:

1. Exports the fp32 graph twice with `polyhead.inference.export_onnx`: as polyhead ships it
   (ONNX Runtime's fused operators; the fp32 reference and the `onnx fp32` path) and unfused
   (`optimize=False`, standard ONNX operators only), which `openvino.convert_model` reads and
   NNCF quantizes (OpenVINO fuses it itself when it compiles).
2. Quantizes that OpenVINO model with `nncf.quantize(model_type=TRANSFORMER, preset=MIXED)`
   calibrated on the same 256 Rotten Tomatoes sentiment train texts polyhead's static int8
   calibrates on (`polyhead.inference.calibration.calibration_set`), tokenized with the
   exported tokenizer, sorted by length and padded per batch of --calibration-batch texts.
   Variants (--variants): NNCF's defaults (SmoothQuant alpha 0.95 for MatMul), other SmoothQuant
   alphas, SmoothQuant off, the overflow fix on every layer, and ignored scopes that keep the
   feed-forward products (and all of layer 5) fp32; with --accuracy-control also
   `nncf.quantize_with_accuracy_control` against the budget on polyhead's 128 probe texts
   (slow: a trial run on this 2-core machine under load had not finished after 35 minutes).
3. Measures each variant's min and mean cosine against polyhead's fp32 ONNX embeddings on the
   first --reference Rotten Tomatoes sentiment validation texts (texts calibration never saw),
   and what it runs in int8 (from the compiled model: the precision of each product).
4. Times, in --rounds rounds alternating in this order: sentence-transformers as shipped (its
   own process, benchmarks/st_anchor.py, as encode_speed.py runs it), polyhead onnx fp32
   (`OnnxEncoder`), polyhead's calibrated static int8 (`export_onnx(..., quantize=True)`,
   unless --no-ort-int8), OpenVINO fp32 and the OpenVINO int8 variants that meet, or nearly
   meet (--near), the budget, plus NNCF's default variant (every product int8, the speed
   ceiling). Every path encodes the first --texts train texts, batch --batch-size, longest first,
   one batch per core (OpenVINO: one stream per core, one infer request per worker thread,
   the same batching code as `OnnxEncoder`). A ratio is the median over rounds of
   (other path's time / this path's time) within a round.

Prints the tables and a JSON summary (also written to --json).
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
import warnings
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode_speed import Anchor, print_table  # noqa: E402  (sentence-transformers in its own process)
from openvino_runtime import OpenVinoEncoder, product_precisions, short_name  # noqa: E402

BUDGET = (0.99, 0.998)
"""min cosine, mean cosine against fp32 (polyhead's default static int8 budget)."""

FFN_OUT = r".*layer\.\d+/output/dense/MatMul"
FFN_IN = r".*layer\.\d+/intermediate/dense/MatMul"
LAYER5 = r".*layer\.5/.*MatMul"
VARIANTS = ("default", "sq-0.5", "sq-0.75", "sq-off", "ignore-ffn-out", "ignore-ffn", "ignore-ffn-layer5")
ALL_VARIANTS = (*VARIANTS, "overflow-fix-all", "sq-1.0")


# ---------------------------------------------------------------------------- arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="train texts timed (default: 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (default: 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of every timed path (default: 32)")
    parser.add_argument("--reference", type=int, default=500, help="validation texts the cosines are measured on (default: 500)")
    parser.add_argument("--calibration", type=int, default=256, help="calibration train texts (default: 256)")
    parser.add_argument("--calibration-batch", type=int, default=16, help="texts per padded calibration batch (default: 16, as polyhead)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"NNCF variants (default: {','.join(VARIANTS)}; also: "
                        f"{','.join(v for v in ALL_VARIANTS if v not in VARIANTS)})")
    parser.add_argument("--accuracy-control", type=float, default=None, metavar="MARGIN",
                        help="also run nncf.quantize_with_accuracy_control, the budget tightened by MARGIN on the probe texts "
                        "(e.g. 0.002: min 0.992 / mean 0.9985); slow")
    parser.add_argument("--near", default="0.99:0.9975", metavar="MIN:MEAN",
                        help="time int8 variants with at least these cosines (default: 0.99:0.9975; the default variant is always timed)")
    parser.add_argument("--time-all", action="store_true", help="time every int8 variant")
    parser.add_argument("--no-ort-int8", action="store_true", help="skip polyhead's ONNX Runtime static int8 (its build takes ~1 min)")
    parser.add_argument("--no-anchor", action="store_true", help="skip sentence-transformers")
    parser.add_argument("--work", type=Path, default=None, help="keep the exported and quantized models here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary to this JSON file")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------- quantization
@dataclass
class Variant:
    name: str
    description: str
    seconds: float = 0.0
    min_cosine: float = 0.0
    mean_cosine: float = 0.0
    precisions: dict = field(default_factory=dict)
    error: str = ""
    model: object = None

    @property
    def meets(self) -> bool:
        return not self.error and self.min_cosine >= BUDGET[0] and self.mean_cosine >= BUDGET[1]


def variant_settings(name: str) -> tuple[str, dict]:
    """(description, nncf.quantize keyword arguments) of a named variant."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters, OverflowFix

    def smooth(alpha: float) -> dict:
        return {"advanced_parameters": AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=alpha))}

    if name == "default":
        return "NNCF defaults for TRANSFORMER (MIXED preset, SmoothQuant alpha 0.95 on MatMul, fast bias correction)", {}
    if name.startswith("sq-") and name != "sq-off":
        alpha = float(name[3:])
        return f"SmoothQuant alpha {alpha}", smooth(alpha)
    if name == "sq-off":
        return "SmoothQuant off", smooth(-1)
    if name == "overflow-fix-all":
        return "overflow fix on every layer (7-bit weights, no AVX2 saturation)", {
            "advanced_parameters": AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE)}
    if name == "ignore-ffn-out":
        return "second feed-forward products (output.dense) kept fp32", {"ignored_scope": nncf.IgnoredScope(patterns=[FFN_OUT])}
    if name == "ignore-ffn":
        return "both feed-forward products kept fp32", {"ignored_scope": nncf.IgnoredScope(patterns=[FFN_OUT, FFN_IN])}
    if name == "ignore-ffn-layer5":
        return "both feed-forward products and all of layer 5 kept fp32", {
            "ignored_scope": nncf.IgnoredScope(patterns=[FFN_OUT, FFN_IN, LAYER5])}
    raise SystemExit(f"unknown variant {name!r} (known: {', '.join(ALL_VARIANTS)})")


def padded_batches(ids: list[np.ndarray], pad_id: int, batch_size: int, extra: np.ndarray | None = None) -> list:
    """Feeds sorted by length and padded per batch (as polyhead's TokenBatchReader), optionally with rows of `extra`."""
    from polyhead.tokenization import pad_arrays

    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    items = []
    for start in range(0, len(ids), batch_size):
        index = order[start : start + batch_size]
        input_ids, mask = pad_arrays([ids[i] for i in index], pad_id)
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        items.append(feeds if extra is None else (feeds, extra[index]))
    return items


def accuracy_control(model, calibration, probe_items, margin: float) -> tuple[object, str]:
    """nncf.quantize_with_accuracy_control with a metric that is >= 0 exactly when the tightened budget holds on the probe texts."""
    import nncf

    from polyhead.similarity import row_cosines

    low, mean = BUDGET[0] + margin, min(BUDGET[1] + margin / 4, 0.9999)

    def validate(compiled, items) -> tuple[float, None]:
        output = compiled.output("embedding")
        cosines = np.concatenate([row_cosines(compiled(feeds)[output], reference) for feeds, reference in items])
        # 1.0 for fp32, 0.0 on the budget's edge: the allowed drop is 1.0
        return float(min((cosines.min() - low) / (1 - low), (cosines.mean() - mean) / (1 - mean))), None

    validation = nncf.Dataset(probe_items, lambda item: item[0])
    quantized = nncf.quantize_with_accuracy_control(
        model, calibration, validation, validate, max_drop=1.0, drop_type=nncf.DropType.ABSOLUTE,
        preset=nncf.QuantizationPreset.MIXED, model_type=nncf.ModelType.TRANSFORMER, subset_size=10**6,
    )
    return quantized, f"nncf.quantize_with_accuracy_control, metric held to min {low:.4f} / mean {mean:.5f} on 128 probe texts"


# ---------------------------------------------------------------------------- timing
def time_paths(paths: dict[str, object], anchor, texts: list[str], batch_size: int, rounds: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in ([anchor.label] if anchor else []) + list(paths)}
    for path in paths.values():
        path.encode(texts[:256], batch_size=batch_size)  # first shapes compiled, sessions built
    if anchor:
        anchor.warm()
    for index in range(rounds):
        line = []
        if anchor:
            seconds[anchor.label].append(anchor.run())
            line.append(f"{anchor.label} {len(texts) / seconds[anchor.label][-1]:.0f}/s")
        for name, path in paths.items():
            start = time.perf_counter()
            path.encode(texts, batch_size=batch_size)
            seconds[name].append(time.perf_counter() - start)
            line.append(f"{name} {len(texts) / seconds[name][-1]:.0f}/s")
        print(f"  round {index + 1}/{rounds} (load {os.getloadavg()[0]:.1f}): " + ", ".join(line), flush=True)
    return seconds


def ratio(seconds: dict[str, list[float]], anchor: str, path: str) -> tuple[float, list[float]]:
    """Median over rounds of anchor time / path time (> 1: the path is faster), and the per-round ratios."""
    per_round = [a / b for a, b in zip(seconds[anchor], seconds[path])]
    return statistics.median(per_round), per_round


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    import logging

    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.ERROR)

    from polyhead import SentenceEncoder
    from polyhead.datasets import rotten_tomatoes
    from polyhead.inference import ExportOptions, OnnxEncoder, export_onnx, get_threads
    from polyhead.inference.allocator import keep_freed_memory
    from polyhead.inference.calibration import calibration_set
    from polyhead.similarity import row_cosines

    import importlib.metadata as md

    versions = {p: md.version(p) for p in ("openvino", "nncf", "onnxruntime", "torch", "sentence-transformers")}
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}; cores {os.cpu_count()}; "
          f"workers {get_threads()}")
    keep_freed_memory()  # polyhead's process-wide allocator setting, as in encode_speed.py (the anchor runs as shipped)

    work_holder = None
    if args.work is None:
        work_holder = tempfile.TemporaryDirectory(prefix="polyhead-openvino-")
        work = Path(work_holder.name)
    else:
        work = args.work
        work.mkdir(parents=True, exist_ok=True)

    data = rotten_tomatoes("sentiment")
    texts = data.train.texts[: args.texts]
    reference_texts = data.validation.texts[: args.reference]
    calib = calibration_set([], args.calibration, 128)
    anchor = None if args.no_anchor else Anchor("sentence-transformers", len(texts), args.batch_size, None, tune_allocator=False)

    # 1. the fp32 graphs
    encoder = SentenceEncoder(device="cpu")
    step = time.perf_counter()
    export_onnx(encoder, work / "onnx-fp32")
    export_onnx(encoder, work / "onnx-fp32-unfused", ExportOptions(optimize=False))
    print(f"exported fp32 ONNX (fused, and unfused for OpenVINO): {time.perf_counter() - step:.0f} s")
    onnx_fp32 = OnnxEncoder(work / "onnx-fp32")
    tokenizer = onnx_fp32.text_tokenizer
    reference = onnx_fp32.encode(reference_texts, show_progress=False)
    probe_reference = onnx_fp32.encode(calib.probe, show_progress=False)

    core = ov.Core()
    step = time.perf_counter()
    ov_model = ov.convert_model(work / "onnx-fp32-unfused" / "model.onnx")
    print(f"openvino.convert_model: {time.perf_counter() - step:.1f} s; inputs "
          + ", ".join(f"{p.get_any_name()} {p.get_partial_shape()}" for p in ov_model.inputs))
    workers = get_threads()
    ov_fp32 = OpenVinoEncoder(core, ov_model, tokenizer, workers)

    def cosines_of(path) -> tuple[float, float]:
        values = row_cosines(path.encode(reference_texts, batch_size=32), reference)
        return float(values.min()), float(values.mean())

    fp32_min, fp32_mean = cosines_of(ov_fp32)
    fp32_kernels = product_precisions(ov_fp32.compiled)["kernels"]
    print("OpenVINO fp32 kernels: " + ", ".join(f"{k} x{n}" for k, n in sorted(fp32_kernels.items())))
    print(f"OpenVINO fp32 vs polyhead onnx fp32 on {len(reference_texts)} validation texts: min cosine {fp32_min:.6f}, mean {fp32_mean:.7f}")

    # 2. NNCF variants
    calibration_items = padded_batches(tokenizer.tokenize(calib.calibration).ids, tokenizer.pad_id, args.calibration_batch)
    calibration = nncf.Dataset(calibration_items)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    variants: list[Variant] = []
    print(f"\nNNCF on {len(calib.calibration)} texts ({calib.source}, {len(calibration_items)} padded batches of "
          f"{args.calibration_batch}); cosines vs polyhead onnx fp32 on {len(reference_texts)} validation texts")
    jobs = [(name, None) for name in names]
    if args.accuracy_control is not None:
        jobs.append(("accuracy-control", args.accuracy_control))
    for name, margin in jobs:
        step = time.perf_counter()
        try:
            if margin is None:
                description, options = variant_settings(name)
                quantized = nncf.quantize(ov_model, calibration, model_type=nncf.ModelType.TRANSFORMER,
                                          preset=nncf.QuantizationPreset.MIXED, subset_size=len(calibration_items), **options)
            else:
                probe_items = padded_batches(tokenizer.tokenize(calib.probe).ids, tokenizer.pad_id, 32, probe_reference)
                quantized, description = accuracy_control(ov_model, calibration, probe_items, margin)
            variant = Variant(name, description, time.perf_counter() - step)
            path = OpenVinoEncoder(core, quantized, tokenizer, workers)
            variant.min_cosine, variant.mean_cosine = cosines_of(path)
            variant.precisions = product_precisions(path.compiled)
            variant.model = path
        except Exception as error:  # report and go on: one failing variant should not hide the others
            variant = Variant(name, name, time.perf_counter() - step, error=f"{type(error).__name__}: {error}")
        variants.append(variant)
        p = variant.precisions
        print(f"  {name:18s} " + (f"FAILED {variant.error}" if variant.error else
              f"min {variant.min_cosine:.5f} mean {variant.mean_cosine:.5f} {'MEETS' if variant.meets else 'misses'} budget; "
              f"int8: {p['weight_products_int8']}/{p['weight_products']} weight products ({p['int8_weight_share']:.0%} of weights), "
              f"{p['attention_products_int8']}/{p['attention_products_int8'] + p['attention_products_fp32']} attention products; "
              f"{variant.seconds:.0f} s"), flush=True)
        if not variant.error:
            print("      kernels: " + ", ".join(f"{k} x{n}" for k, n in sorted(p["kernels"].items())), flush=True)

    # polyhead's ONNX Runtime static int8 (calibrated, searched to the same budget)
    ort_int8, ort_cost = None, None
    if not args.no_ort_int8:
        step = time.perf_counter()
        result = export_onnx(encoder, work / "onnx-int8", ExportOptions(quantize=True))
        ort_cost = result.manifest.graphs["int8"].cost
        ort_int8 = OnnxEncoder(work / "onnx-int8", backend="onnx-int8")
        low, mean = cosines_of(ort_int8)
        print(f"  {'ORT static int8':18s} min {low:.5f} mean {mean:.5f} (polyhead's export, {time.perf_counter() - step:.0f} s); "
              f"{len(ort_cost.fp32_nodes)} products kept fp32, {ort_cost.int8_share:.0%} of product weights int8")
        ort_cost = {"min_cosine": low, "mean_cosine": mean, "fp32_products": len(ort_cost.fp32_nodes), "int8_share": ort_cost.int8_share}

    # 3. timing
    near_min, near_mean = (float(x) for x in args.near.split(":"))
    timed = [v for v in variants if not v.error and (args.time_all or v.name == "default" or v.meets
                                                      or (v.min_cosine >= near_min and v.mean_cosine >= near_mean))]
    paths = {"onnx fp32": onnx_fp32}
    if ort_int8 is not None:
        paths["onnx static int8"] = ort_int8
    paths["openvino fp32"] = ov_fp32
    for variant in timed:
        paths[f"openvino int8 {variant.name}"] = variant.model
    print(f"\ntiming: {len(texts)} Rotten Tomatoes train texts, batch {args.batch_size}, {args.rounds} rounds, in this order each round")
    try:
        seconds = time_paths(paths, anchor, texts, args.batch_size, args.rounds)
    finally:
        if anchor:
            anchor.close()
    load_end = os.getloadavg()

    accuracy = {"onnx fp32": (1.0, 1.0), "openvino fp32": (fp32_min, fp32_mean)}
    if ort_cost:
        accuracy["onnx static int8"] = (ort_cost["min_cosine"], ort_cost["mean_cosine"])
    for variant in timed:
        accuracy[f"openvino int8 {variant.name}"] = (variant.min_cosine, variant.mean_cosine)
    rows = [["path", "texts/s (median)", "x ST", "x onnx fp32", "x onnx fp32 per round", "min cos", "mean cos", "budget"]]
    speed = {}
    for name in seconds:
        per_s = len(texts) / statistics.median(seconds[name])
        x_st = ratio(seconds, anchor.label, name)[0] if anchor else None
        x_onnx, per_round = ratio(seconds, "onnx fp32", name)
        low, mean = accuracy.get(name, (None, None))
        met = "" if low is None else ("met" if low >= BUDGET[0] and mean >= BUDGET[1] else "MISSED")
        speed[name] = {"texts_per_s": per_s, "x_st": x_st, "x_onnx_fp32": x_onnx, "x_onnx_fp32_per_round": per_round,
                       "seconds": seconds[name], "min_cosine": low, "mean_cosine": mean}
        rows.append([name, f"{per_s:.0f}", "-" if x_st is None else f"{x_st:.2f}", f"{x_onnx:.2f}",
                     " ".join(f"{r:.2f}" for r in per_round), "-" if low is None else f"{low:.5f}",
                     "-" if mean is None else f"{mean:.5f}", met])
    print()
    print_table(rows)
    print(f"(load average at end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; total {time.perf_counter() - started:.0f} s)")

    summary = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "versions": versions,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "budget": {"min_cosine": BUDGET[0], "mean_cosine": BUDGET[1]},
        "calibration": {"texts": len(calib.calibration), "source": calib.source, "batch": args.calibration_batch},
        "reference_texts": len(reference_texts),
        "openvino_fp32_vs_onnx_fp32": {"min_cosine": fp32_min, "mean_cosine": fp32_mean, "kernels": fp32_kernels},
        "variants": {v.name: {"description": v.description, "seconds_to_quantize": v.seconds, "min_cosine": v.min_cosine,
                              "mean_cosine": v.mean_cosine, "meets_budget": v.meets, "error": v.error, **v.precisions}
                     for v in variants},
        "onnx_static_int8": ort_cost,
        "timing": {"texts": len(texts), "batch_size": args.batch_size, "rounds": args.rounds, "paths": speed},
        "total_seconds": time.perf_counter() - started,
    }
    print("\nJSON summary:")
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
