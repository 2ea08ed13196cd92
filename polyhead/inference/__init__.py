"""Fast inference: bf16, ONNX Runtime (with pooling, normalization and heads in the graph), int8.

`SentenceEncoder.encode(..., backend=...)` and `MultiTaskModel.predict(..., backend=...)`
use these paths; `export_onnx` writes a directory that `OnnxEncoder` / `OnnxModel` (or
`load_exported`) serve without the PyTorch model.
"""

from .backends import BACKEND_ENV, BACKENDS, MIN_AUTO_COSINE, auto_backend, check_backend, default_backend
from .export import ExportError, ExportOptions, ExportResult, export_onnx
from .hardware import CpuInfo, cpu_has_native_bf16, cpu_info
from .manifest import OnnxManifest, QuantizationCost, is_exported_dir
from .onnx_encoder import OnnxEncoder
from .onnx_model import OnnxModel, load_exported
from .runners import AutoFallbackWarning, LossyBackendWarning
from .threads import get_threads, set_threads

__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "MIN_AUTO_COSINE",
    "AutoFallbackWarning",
    "CpuInfo",
    "ExportError",
    "ExportOptions",
    "ExportResult",
    "LossyBackendWarning",
    "OnnxEncoder",
    "OnnxManifest",
    "OnnxModel",
    "QuantizationCost",
    "auto_backend",
    "check_backend",
    "cpu_has_native_bf16",
    "cpu_info",
    "default_backend",
    "export_onnx",
    "get_threads",
    "is_exported_dir",
    "load_exported",
    "set_threads",
]
