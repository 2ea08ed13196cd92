"""Fast inference: bf16, ONNX Runtime (with pooling, normalization and heads in the graph), int8.

`SentenceEncoder.encode(..., backend=...)` and `MultiTaskModel.predict(..., backend=...)`
use these paths; `export_onnx` writes a directory that `OnnxEncoder` / `OnnxModel` (or
`load_exported`) serve without the PyTorch model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

_EXPORTS = {
    "DecisionStore": ".auto_probe",
    "ProbeResult": ".auto_probe",
    "BACKEND_ENV": ".backends",
    "BACKENDS": ".backends",
    "MIN_AUTO_COSINE": ".backends",
    "auto_backend": ".backends",
    "check_backend": ".backends",
    "default_backend": ".backends",
    "ExportError": ".export",
    "ExportOptions": ".export",
    "ExportResult": ".export",
    "export_onnx": ".export",
    "PipelineOptions": ".device_pipeline",
    "CpuInfo": ".hardware",
    "cpu_has_native_bf16": ".hardware",
    "cpu_info": ".hardware",
    "OnnxManifest": ".manifest",
    "QuantizationCost": ".manifest",
    "is_exported_dir": ".manifest",
    "OnnxEncoder": ".onnx_encoder",
    "OnnxModel": ".onnx_model",
    "load_exported": ".onnx_model",
    "AutoFallbackWarning": ".runners",
    "LossyBackendWarning": ".runners",
    "get_threads": ".threads",
    "set_threads": ".threads",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .auto_probe import DecisionStore, ProbeResult
    from .device_pipeline import PipelineOptions
    from .backends import BACKEND_ENV, BACKENDS, MIN_AUTO_COSINE, auto_backend, check_backend, default_backend
    from .export import ExportError, ExportOptions, ExportResult, export_onnx
    from .hardware import CpuInfo, cpu_has_native_bf16, cpu_info
    from .manifest import OnnxManifest, QuantizationCost, is_exported_dir
    from .onnx_encoder import OnnxEncoder
    from .onnx_model import OnnxModel, load_exported
    from .runners import AutoFallbackWarning, LossyBackendWarning
    from .threads import get_threads, set_threads
