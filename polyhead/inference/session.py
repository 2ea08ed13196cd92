"""ONNX Runtime sessions set up for batch-level parallelism."""

from __future__ import annotations

from pathlib import Path


def make_session(model: str | Path | bytes, threads: int = 1):
    """A CPU session running on `threads` intra-op threads (1 when batches run on parallel workers).

    With one thread per session, concurrent `run` calls from the worker pool each use
    one core and never wait on each other; ONNX Runtime releases the GIL while it runs.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Threads that spin while waiting take cores from the other workers on a busy machine.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
