"""`mixed_precision: auto` picks bf16 only where the hardware runs it; a bf16 run trains and says so."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from polyhead.training import load_config, train
from polyhead.training.precision import resolve_precision

from tests.conftest import native_bf16_cpu

from .conftest import small_config, write_config


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch):
    import polyhead.inference.backends as backends

    monkeypatch.setattr(backends, "bf16_available", lambda device_type: False)
    assert resolve_precision("auto", "cpu").used == "no"
    monkeypatch.setattr(backends, "bf16_available", lambda device_type: True)
    assert resolve_precision("auto", "cpu").used == "bf16"
    assert resolve_precision("no", "cpu").used == "no"
    with pytest.raises(ValueError, match="unknown mixed_precision"):
        resolve_precision("fp8", "cpu")


def test_a_run_records_its_precision_and_padding(tmp_path, tiny_bert_dir):
    config = small_config(str(tiny_bert_dir), tmp_path / "run", max_steps=4)
    result = train(load_config(write_config(tmp_path / "run.yaml", config)))
    log = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    start = next(r for r in log if r.get("message") == "start")
    assert start["mixed_precision"]["requested"] == "auto"
    assert start["mixed_precision"]["used"] == ("bf16" if native_bf16_cpu() else "no"), "auto follows the CPU's own flags"
    ratios = [r["padding_ratio"] for r in log if r["type"] == "train"]
    assert ratios and all(1.0 <= v < 1.5 for entry in ratios for v in entry.values())


def test_forced_bf16_autocast_trains_with_fp32_weights(tmp_path, tiny_bert_dir):
    """bf16 autocast runs wherever torch has it (emulated without AVX-512 BF16, only slower).

    The same run in fp32 (`no`) logs different losses (so the products really ran in bf16)
    that agree to bf16's precision.
    """
    losses = {}
    for precision in ("bf16", "no"):
        config = small_config(str(tiny_bert_dir), tmp_path / precision, tasks=("sentiment",), max_steps=4, eval_every=4, mixed_precision=precision)
        result = train(load_config(write_config(tmp_path / f"{precision}.yaml", config)))
        log = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
        start = next(r for r in log if r.get("message") == "start")
        assert start["mixed_precision"]["used"] == precision
        losses[precision] = [v for r in log if r["type"] == "train" for v in r["loss"].values()]
        assert losses[precision] and all(torch.isfinite(torch.tensor(v)) for v in losses[precision])
        weights = load_file(str(result.run_dir / "checkpoints" / "last" / "module.safetensors"))
        assert all(w.dtype == torch.float32 for w in weights.values()), "master weights stay fp32"
    assert len(losses["bf16"]) == len(losses["no"])
    differences = [abs(a - b) for a, b in zip(losses["bf16"], losses["no"])]
    assert max(differences) > 0, "bf16 autocast changed the arithmetic"
    assert max(differences) < 0.05 * max(losses["no"])
