"""The sentence-transformers directory layout, read and written.

An encoder saved by polyhead loads in `sentence_transformers.SentenceTransformer(dir)`
and a sentence-transformers directory loads in polyhead. We write the classic module
names and config keys, which every sentence-transformers release from 2.x to 6.x reads,
and read both the classic and the 5.x+ pooling config formats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .fileio import write_json

TRANSFORMER_TYPE = "sentence_transformers.models.Transformer"
POOLING_TYPE = "sentence_transformers.models.Pooling"
DENSE_TYPE = "sentence_transformers.models.Dense"
NORMALIZE_TYPE = "sentence_transformers.models.Normalize"
TANH = "torch.nn.modules.activation.Tanh"
DENSE_WEIGHTS = "model.safetensors"

_CLASSIC_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
}


@dataclass
class SentenceTransformerLayout:
    """What polyhead needs from a sentence-transformers directory."""

    transformer_path: str
    """Sub-directory holding the HF backbone and tokenizer ('' for the root)."""
    pooling: str | None
    """Pooling mode in polyhead's names; None when the directory has no Pooling module."""
    dense_path: str | None
    """Sub-directory of a tanh Dense module after CLS pooling (polyhead's `cls_pooler`)."""
    normalize: bool
    """Whether a Normalize module ends the chain."""
    max_seq_length: int | None
    """From sentence_bert_config.json, when it is set there."""


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _module_kind(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1].lower()


def pooling_mode_from_config(config: dict) -> str:
    """Map a Pooling config (classic booleans or 5.x `pooling_mode`) to a polyhead mode."""
    if "pooling_mode" in config:
        mode = str(config["pooling_mode"])
        mode = {"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max"}.get(mode, mode)
    else:
        chosen = [name for key, name in _CLASSIC_POOLING_KEYS.items() if config.get(key)]
        others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in _CLASSIC_POOLING_KEYS]
        if len(chosen) != 1 or others:
            raise ValueError(f"unsupported sentence-transformers pooling config: {config}")
        mode = chosen[0]
    if mode not in ("mean", "cls", "max"):
        raise ValueError(f"unsupported sentence-transformers pooling mode {mode!r}")
    return mode


def read_layout(files: dict[str, Path | None]) -> SentenceTransformerLayout:
    """Parse a layout from its resolved files: modules.json and, per module, its config.

    `files` maps relative names (`modules.json`, `1_Pooling/config.json`, ...) to local
    paths, or None where the file does not exist; see `SentenceEncoder` for resolution.
    """
    modules = _read_json(files["modules.json"])  # type: ignore[arg-type]
    transformer_path, pooling, dense_path, normalize = "", None, None, False
    for module in sorted(modules, key=lambda m: m.get("idx", 0)):
        kind, path = _module_kind(module["type"]), module.get("path", "")
        if kind == "transformer":
            transformer_path = path
        elif kind == "pooling":
            pooling = pooling_mode_from_config(_read_json(files[f"{path}/config.json"]))  # type: ignore[arg-type]
        elif kind == "dense":
            dense_config = _read_json(files[f"{path}/config.json"])  # type: ignore[arg-type]
            if pooling != "cls" or dense_config.get("activation_function") != TANH:
                raise ValueError("only a tanh Dense module after CLS pooling (polyhead's cls_pooler) is supported")
            dense_path = path
        elif kind == "normalize":
            normalize = True
        else:
            raise ValueError(f"unsupported sentence-transformers module {module['type']!r}")
    max_seq_length = None
    bert_config = files.get(_join(transformer_path, "sentence_bert_config.json"))
    if bert_config is not None:
        max_seq_length = _read_json(bert_config).get("max_seq_length")
    return SentenceTransformerLayout(transformer_path, pooling, dense_path, normalize, max_seq_length)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def layout_file_names(modules: list[dict]) -> list[str]:
    """The per-module files `read_layout` may ask for, given modules.json's content."""
    names = []
    for module in modules:
        path = module.get("path", "")
        if _module_kind(module["type"]) == "transformer":
            names.append(_join(path, "sentence_bert_config.json"))
        elif _module_kind(module["type"]) in ("pooling", "dense"):
            names.append(f"{path}/config.json")
    return names


def write_layout(
    directory: Path,
    *,
    hidden_size: int,
    pooling: str,
    normalize: bool,
    max_seq_length: int,
    versions: dict[str, str],
) -> str | None:
    """Write modules.json and the module configs; returns the Dense dir for cls_pooler weights."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": TRANSFORMER_TYPE}]
    st_pooling = "cls" if pooling == "cls_pooler" else pooling
    modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": POOLING_TYPE})
    write_json(
        directory / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": hidden_size,
            "pooling_mode_cls_token": st_pooling == "cls",
            "pooling_mode_mean_tokens": st_pooling == "mean",
            "pooling_mode_max_tokens": st_pooling == "max",
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    dense_path = None
    if pooling == "cls_pooler":
        dense_path = "2_Dense"
        modules.append({"idx": 2, "name": "2", "path": dense_path, "type": DENSE_TYPE})
        write_json(
            directory / dense_path / "config.json",
            {"in_features": hidden_size, "out_features": hidden_size, "bias": True, "activation_function": TANH},
        )
    if normalize:
        index = len(modules)
        path = f"{index}_Normalize"
        (directory / path).mkdir(parents=True, exist_ok=True)
        modules.append({"idx": index, "name": str(index), "path": path, "type": NORMALIZE_TYPE})
    write_json(directory / "modules.json", modules)
    write_json(directory / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    write_json(
        directory / "config_sentence_transformers.json",
        {"__version__": versions, "prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
    )
    return dense_path
