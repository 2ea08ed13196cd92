"""The sentence-transformers directory layout: what polyhead writes and what it accepts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polyhead import SentenceEncoder
from polyhead.st_format import (
    DENSE_TYPE,
    NORMALIZE_TYPE,
    POOLING_TYPE,
    TANH,
    TRANSFORMER_TYPE,
    layout_file_names,
    pooling_mode_from_config,
    read_layout,
    write_layout,
)


def _files(directory: Path) -> dict[str, Path | None]:
    modules = json.loads((directory / "modules.json").read_text())
    files: dict[str, Path | None] = {"modules.json": directory / "modules.json"}
    for name in layout_file_names(modules):
        files[name] = directory / name if (directory / name).is_file() else None
    return files


def _write(directory: Path, pooling: str, normalize: bool, max_seq_length: int = 77) -> str | None:
    return write_layout(
        directory, hidden_size=32, pooling=pooling, normalize=normalize, max_seq_length=max_seq_length, versions={"polyhead": "test"}
    )


@pytest.mark.parametrize(
    ("config", "mode"),
    [
        ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "mean"),
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_sqrt_len_tokens": False}, "cls"),
        ({"pooling_mode_max_tokens": True}, "max"),
        ({"pooling_mode": "mean"}, "mean"),
        ({"pooling_mode": "cls"}, "cls"),
        ({"pooling_mode": "max"}, "max"),
        ({"pooling_mode": "mean_tokens"}, "mean"),
    ],
)
def test_pooling_configs_old_and_new(config, mode):
    assert pooling_mode_from_config({"word_embedding_dimension": 32, **config}) == mode


@pytest.mark.parametrize(
    "config",
    [
        {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True},
        {"pooling_mode_mean_sqrt_len_tokens": True},
        {"pooling_mode_mean_tokens": True, "pooling_mode_weightedmean_tokens": True},
        {"pooling_mode": "lasttoken"},
        {},
    ],
)
def test_unsupported_pooling_configs_are_refused(config):
    with pytest.raises(ValueError, match="unsupported"):
        pooling_mode_from_config(config)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max", "cls_pooler"])
@pytest.mark.parametrize("normalize", [False, True])
def test_written_layout_reads_back(tmp_path, pooling, normalize):
    dense_dir = _write(tmp_path, pooling, normalize)
    assert (dense_dir is not None) == (pooling == "cls_pooler")
    modules = json.loads((tmp_path / "modules.json").read_text())
    types = [m["type"] for m in modules]
    expected = [TRANSFORMER_TYPE, POOLING_TYPE] + [DENSE_TYPE] * (pooling == "cls_pooler") + [NORMALIZE_TYPE] * normalize
    assert types == expected
    assert [m["idx"] for m in modules] == list(range(len(modules)))
    assert all((tmp_path / m["path"]).is_dir() for m in modules)
    pooling_config = json.loads((tmp_path / "1_Pooling" / "config.json").read_text())
    assert pooling_config["word_embedding_dimension"] == 32
    assert sum(v is True for k, v in pooling_config.items() if k.startswith("pooling_mode_")) == 1

    layout = read_layout(_files(tmp_path))
    assert layout.transformer_path == ""
    assert layout.pooling == ("cls" if pooling == "cls_pooler" else pooling)
    assert layout.dense_path == dense_dir
    assert layout.normalize is normalize
    assert layout.max_seq_length == 77


def test_a_dense_module_must_be_tanh_after_cls(tmp_path):
    _write(tmp_path, "cls_pooler", normalize=False)
    config_file = tmp_path / "2_Dense" / "config.json"
    config = json.loads(config_file.read_text())
    config["activation_function"] = "torch.nn.modules.linear.Identity"
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="tanh Dense"):
        read_layout(_files(tmp_path))


def test_unknown_modules_are_refused(tmp_path):
    _write(tmp_path, "mean", normalize=False)
    modules = json.loads((tmp_path / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_LayerNorm", "type": "sentence_transformers.models.LayerNorm"})
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match="unsupported sentence-transformers module .*LayerNorm"):
        read_layout(_files(tmp_path))


def test_a_transformer_in_a_subfolder_is_found(tmp_path, tiny_model_dir, rt_texts):
    """Newer sentence-transformers layouts keep the backbone in 0_Transformer/."""
    import shutil

    shutil.copytree(tiny_model_dir("bert"), tmp_path / "0_Transformer")
    _write(tmp_path, "max", normalize=True, max_seq_length=64)
    modules = json.loads((tmp_path / "modules.json").read_text())
    modules[0]["path"] = "0_Transformer"
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "sentence_bert_config.json").rename(tmp_path / "0_Transformer" / "sentence_bert_config.json")

    loaded = SentenceEncoder(tmp_path, device="cpu")
    assert (loaded.pooling_mode, loaded.normalize, loaded.max_seq_length) == ("max", True, 64)
    direct = SentenceEncoder(tiny_model_dir("bert"), pooling="max", normalize=True, max_seq_length=64, device="cpu")
    assert np.abs(loaded.encode(rt_texts[:5]) - direct.encode(rt_texts[:5])).max() <= 1e-6


def test_saved_directory_is_complete(tiny_st_dir):
    names = {p.relative_to(tiny_st_dir).as_posix() for p in tiny_st_dir.rglob("*") if p.is_file()}
    for required in (
        "modules.json",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
    ):
        assert required in names
    assert not any(name.endswith((".bin", ".pt")) for name in names), "weights are safetensors only"
    assert not [p for p in tiny_st_dir.parent.iterdir() if ".tmp-" in p.name], "no temp dirs left behind"


def test_saving_over_a_model_replaces_it_whole(tiny_model_dir, tmp_path, rt_texts):
    target = tmp_path / "model"
    SentenceEncoder(tiny_model_dir("bert"), pooling="cls_pooler", normalize=True, device="cpu").save(target)
    assert (target / "2_Dense" / "model.safetensors").is_file()
    mean = SentenceEncoder(tiny_model_dir("bert"), pooling="mean", normalize=False, max_seq_length=50, device="cpu")
    mean.save(target)
    assert not (target / "2_Dense").exists() and not (target / "3_Normalize").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    reloaded = SentenceEncoder(target, device="cpu")
    assert (reloaded.pooling_mode, reloaded.normalize, reloaded.max_seq_length) == ("mean", False, 50)
    assert np.abs(reloaded.encode(rt_texts[:4]) - mean.encode(rt_texts[:4])).max() <= 1e-6


def test_load_is_an_alias_that_accepts_overrides(tiny_st_dir, rt_texts):
    loaded = SentenceEncoder.load(tiny_st_dir, pooling="cls", normalize=False, device="cpu")
    assert (loaded.pooling_mode, loaded.normalize) == ("cls", False)
    assert loaded.encode(rt_texts[:2]).shape == (2, 32)


def test_cls_pooler_weights_must_be_present(tiny_model_dir, tmp_path):
    target = tmp_path / "model"
    SentenceEncoder(tiny_model_dir("bert"), pooling="cls_pooler", device="cpu").save(target)
    (target / "2_Dense" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="2_Dense.*no model.safetensors"):
        SentenceEncoder(target, device="cpu")
