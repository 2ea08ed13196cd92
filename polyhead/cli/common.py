"""Arguments and helpers shared by the `polyhead` subcommands."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import InputError
from ..inference.backends import BACKENDS

MODEL_CONFIG = "polyhead_model.json"
"""model.MODEL_CONFIG, repeated so that checking a directory never imports torch."""

POOLING_CHOICES = ("mean", "cls", "max", "cls_pooler")
"""pooling.POOLING_MODES, repeated here so that parsing arguments never imports torch (a test keeps them equal)."""


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --pooling, --normalize/--no-normalize, --batch-size, --no-progress, --backend, --threads, --device."""
    group = parser.add_argument_group("encoder")
    group.add_argument("--model", default=None, help="model directory or hub name (default: built-in all-MiniLM-L6-v2)")
    group.add_argument("--pooling", choices=POOLING_CHOICES, default=None, help="pooling mode (default: the model's own, else mean)")
    group.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="L2-normalize embeddings (default: the model's own setting)",
    )
    group.add_argument("--max-seq-length", type=int, default=None, help="truncate texts to this many tokens")
    group.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    add_progress_argument(parser)
    add_speed_arguments(parser)
    add_device_argument(parser)


def add_speed_arguments(parser: argparse.ArgumentParser, int8_budget: bool = True) -> None:
    """--backend and --threads, on every command that encodes; --max-int8-loss where exported directories load."""
    group = parser.add_argument_group("speed")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="default: $POLYHEAD_BACKEND, else auto. auto: bf16 where the CPU/GPU supports it (embeddings within "
        "cosine 0.999 of fp32); torch: exact fp32; torch-bf16; onnx: ONNX Runtime fp32; onnx-int8: lossy, its "
        "measured cost is printed",
    )
    group.add_argument("--threads", type=int, default=None, help="CPU cores to use (default: all)")
    if not int8_budget:
        return
    group.add_argument(
        "--max-int8-loss",
        type=float,
        default=None,
        metavar="LOSS",
        help="let auto take the int8 graph of a directory written by `polyhead export --quantize` when its measured "
        "loss (the larger of 1 - min cosine against fp32 and any task's share of changed labels) is at most LOSS, "
        "e.g. 0.01 (default: off, auto never takes int8)",
    )


def int8_budget(args: argparse.Namespace, path: str | Path | None, exported: bool) -> float | None:
    """--max-int8-loss, checked: between 0 and 1, and only for exported directories (where the cost is recorded)."""
    loss = getattr(args, "max_int8_loss", None)
    if loss is None:
        return None
    if not 0.0 <= loss <= 1.0:
        raise InputError(f"--max-int8-loss must be between 0 and 1 (e.g. 0.01 for min cosine 0.99), got {loss}")
    if not exported:
        raise InputError("--max-int8-loss applies to a directory written by `polyhead export --quantize`, where the int8 "
                         "cost is recorded; this is a PyTorch model", file=path)
    return loss


def apply_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None) is None:
        return
    if args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    from ..inference import set_threads

    set_threads(args.threads)


def existing_dir(path: str | Path, what: str = "model directory") -> Path:
    """`path` as a directory that exists; a missing path or a file is one clear error."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such {what}", file=path)
    if not path.is_dir():
        raise InputError(f"is a file; expected a {what}", file=path)
    return path


def existing_file(path: str | Path) -> Path:
    """An input file that exists, checked before any model loads."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", file=path)
    return path


def task_model_dir(path: str | Path, *, allow_exported: bool) -> Path:
    """A directory holding a multi-task model (or, where allowed, an exported one), checked before loading."""
    from ..inference.manifest import is_exported_dir

    path = existing_dir(path)
    if is_exported_dir(path):
        if allow_exported:
            return path
        raise InputError("is an exported ONNX directory; this command needs the PyTorch model directory it was exported from", file=path)
    if not (path / MODEL_CONFIG).is_file():
        raise InputError(
            f"not a polyhead model directory (no {MODEL_CONFIG}); `polyhead train` writes one to RUN_DIR/model", file=path
        )
    return path


def exported_device_error(path) -> InputError:
    """--device with an exported (ONNX) directory: it has no device to choose."""
    return InputError("--device applies to PyTorch models; an exported directory runs on ONNX Runtime's CPU provider", file=path)


def load_task_model(path: Path, backend: str | None, max_int8_loss: float | None = None, device=None):
    """A MultiTaskModel, or an OnnxModel for a directory written by `polyhead export` (int8 under auto within `max_int8_loss`)."""
    from ..inference.manifest import is_exported_dir

    if is_exported_dir(path) and device is not None:
        raise exported_device_error(path)
    if is_exported_dir(path):
        from ..inference import OnnxEncoder, OnnxModel
        from ..inference.onnx_model import has_task_heads

        if not has_task_heads(OnnxEncoder(path).manifest):
            raise InputError("holds an exported encoder without task heads; embed with `polyhead encode --model DIR`", file=path)
        model = OnnxModel(path, **({"backend": backend} if backend else {}))
        if max_int8_loss is not None:
            if backend is None:
                model.encoder.requested_backend = "auto"
            try:
                model.encoder.set_int8_budget(max_int8_loss)
            except ValueError as error:
                raise InputError(f"--max-int8-loss: {error}") from None
        return model
    if max_int8_loss is not None:
        raise InputError("--max-int8-loss applies to a directory written by `polyhead export --quantize`", file=path)
    from ..model import MultiTaskModel

    quiet_library_progress()
    model = MultiTaskModel.load(path, device=device)
    if backend is not None:
        model.encoder.backend = backend
    return model


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="turn off progress bars")


UNACTIONABLE_NOTICES = ("does not support setting its attention implementation dynamically",)
"""transformers notices about its internals that a user of the command cannot act on."""


class _DropNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(notice in record.getMessage() for notice in UNACTIONABLE_NOTICES)


def quiet_library_progress() -> None:
    """transformers prints a weight-loading bar on every load (the CLI has its own bars) and notices
    about its internals (MPNet's attention implementation) that a user cannot act on."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    disable_progress_bars()
    hf_logging.get_logger("transformers")  # sets up the library's handler
    for handler in logging.getLogger("transformers").handlers:
        if not any(isinstance(f, _DropNotices) for f in handler.filters):
            handler.addFilter(_DropNotices())


def load_encoder(args: argparse.Namespace):
    """A SentenceEncoder, or an OnnxEncoder when --model is an exported directory; --backend applied."""
    from ..inference.manifest import is_exported_dir

    apply_threads(args)
    exported = bool(args.model and is_exported_dir(args.model))
    max_int8_loss = int8_budget(args, args.model, exported)
    if exported and getattr(args, "device", None) is not None:
        raise exported_device_error(args.model)
    if exported:
        if args.pooling:
            raise InputError("--pooling cannot change an exported model: its pooling is part of the graph", file=args.model)
        from ..inference import OnnxEncoder

        # With a budget, no --backend means auto (int8 if within the budget); without one, the fp32 graph.
        backend = args.backend or ("auto" if max_int8_loss is not None else None)
        try:
            options = {"backend": backend} if backend else {}
            return OnnxEncoder(args.model, max_seq_length=args.max_seq_length, max_int8_loss=max_int8_loss, **options)
        except ValueError as error:
            raise InputError(str(error)) from None
    encoder = encoder_from_args(args)
    if getattr(args, "backend", None) is not None:
        encoder.backend = args.backend
    return encoder


def encoder_from_args(args: argparse.Namespace):
    """The encoder that --model/--pooling/... name; a model that cannot be loaded is an InputError."""
    from ..resolve import check_model_source

    if args.model is not None:
        check_model_source(args.model)  # before torch and transformers load
    device = resolve_cli_device(args)
    from ..encoder import SentenceEncoder

    quiet_library_progress()
    try:
        return SentenceEncoder(
            args.model, pooling=args.pooling, normalize=args.normalize, max_seq_length=args.max_seq_length, device=device
        )
    except (OSError, ValueError) as error:
        if args.model is None:  # the built-in model failing is not the user's input
            raise
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InputError(f"cannot load the model: {reason}", file=args.model) from None


def show_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A plain aligned text table on stdout."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def check_input_columns(path: str | Path, *columns: str) -> None:
    """The input's type, and that `columns` exist (.csv/.jsonl/.parquet): read from its first record, before any model loads."""
    from ..textio import _suffix, iter_records

    path = existing_file(path)
    if _suffix(path) == ".txt":
        return
    records = iter_records(path, required=tuple(columns))
    try:
        next(records, None)
    finally:
        records.close()


def check_output_suffix(path: str | Path, suffixes: tuple[str, ...], what: str = "output") -> str:
    """The lower-case suffix of an output file, one of `suffixes`; checked before any work is done."""
    suffix = Path(path).suffix.lower()
    if suffix not in suffixes:
        raise InputError(f"unsupported {what} type {suffix or '(none)'!r}; use {' or '.join(suffixes)}", file=path)
    return suffix


def saved_task_names(model_dir: Path) -> list[str] | None:
    """The task names a model directory records (polyhead_model.json, or an export's manifest), read without loading weights."""
    import json

    for name, keys in ((MODEL_CONFIG, ("tasks",)), ("polyhead_onnx.json", ("tasks", "pair_tasks"))):
        file = model_dir / name
        if file.is_file():
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
                return [t["name"] for key in keys for t in data.get(key) or []]
            except (ValueError, KeyError, TypeError, AttributeError):
                return None  # a damaged file: the model's own loader says what is wrong with it
    return None


def check_task_names(requested: str | None, model_dir: Path) -> list[str] | None:
    """--tasks split and checked against the names the model directory records."""
    if not requested:
        return None
    tasks = [t.strip() for t in requested.split(",") if t.strip()]
    known = saved_task_names(model_dir)
    if known is not None:
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise InputError(f"unknown task(s) {unknown}; the model has {known}", field="--tasks")
    return tasks


def resolve_cli_device(args: argparse.Namespace):
    """--device as a torch.device (None when not given); an unavailable GPU is one line."""
    name = getattr(args, "device", None)
    if name is None:
        return None
    from ..devices import resolve_device

    return resolve_device(name, "--device")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    from ..devices import DEVICE_HELP

    parser.add_argument("--device", default=None, help=f"where the model runs: {DEVICE_HELP}")
