"""An OpenVINO model behind `OnnxEncoder`'s batching, and what its compiled products run in (for openvino_int8.py)."""

from __future__ import annotations

import threading

import numpy as np


class OpenVinoEncoder:
    """An OpenVINO model with OnnxEncoder's batching: sorted, padded per batch, one batch per core.

    Compiled with one stream per worker and one thread per stream; each worker thread of
    polyhead's pool keeps its own infer request (a sync `infer` releases the GIL).
    """

    def __init__(self, core, model, tokenizer, workers: int) -> None:
        self.workers = workers
        config = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": workers,
            "INFERENCE_NUM_THREADS": workers,
            "ENABLE_CPU_PINNING": False,  # the machine is shared; ONNX Runtime does not pin either
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self.output = self.compiled.output("embedding")
        self.tokenizer = tokenizer
        self._local = threading.local()

    def _request(self):
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return request

    def encode(self, texts: list[str], batch_size: int = 32, **_: object) -> np.ndarray:
        from polyhead.inference.batching import run_batches

        ids = self.tokenizer.tokenize(texts).ids

        def run(input_ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
            result = self._request().infer({"input_ids": input_ids, "attention_mask": mask})
            return {"embedding": np.array(result[self.output], copy=True)}

        return run_batches(ids, run, batch_size=batch_size, pad_id=self.tokenizer.pad_id, workers=self.workers)["embedding"]


def product_precisions(compiled) -> dict:
    """What the compiled model runs in int8: per weight product (FullyConnected) its precision, and attention's products.

    Call after an inference: with dynamic shapes the kernels (`primitiveType`) are chosen at the first run.
    """
    products, attention, kernels = {}, {"int8": 0, "fp32": 0}, {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str) if "layerType" in info else op.get_type_name()
        if kind not in ("FullyConnected", "MatMul"):
            continue
        kernel = f"{kind} {info['primitiveType'].astype(str)} {info['runtimePrecision'].astype(str)}"
        kernels[kernel] = kernels.get(kernel, 0) + 1
        precision = "int8" if info["runtimePrecision"].astype(str) in ("u8", "i8") else "fp32"
        if kind == "MatMul":  # activation x activation (attention scores and context)
            attention[precision] += 1
            continue
        names = info["originalLayersNames"].astype(str).split(",")
        name = next((n for n in names if n.endswith("/MatMul")), None)
        name = name or next((n[: -len("/Add")] + "/MatMul" for n in names if n.endswith("/dense/Add")), names[0])
        weights = op.input(1).get_partial_shape()
        products[name] = {"precision": precision, "weights": int(np.prod([d.get_length() for d in weights]))}
    total = sum(p["weights"] for p in products.values()) or 1
    int8 = sum(p["weights"] for p in products.values() if p["precision"] == "int8")
    fp32 = sorted(name for name, p in products.items() if p["precision"] == "fp32")
    return {
        "weight_products": len(products),
        "weight_products_int8": len(products) - len(fp32),
        "fp32_products": [short_name(n) for n in fp32],
        "int8_weight_share": int8 / total,
        "attention_products_int8": attention["int8"],
        "attention_products_fp32": attention["fp32"],
        "kernels": kernels,
    }


def short_name(name: str) -> str:
    return name.replace("/backbone/encoder/", "").replace("/MatMul", "")
