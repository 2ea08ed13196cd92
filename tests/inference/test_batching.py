"""Sorting, padding and parallel batches give every text its own result, in input order."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.inference.batching import run_batches
from polyhead.inference.hardware import CpuInfo, cpu_info
from polyhead.tokenization import pad_arrays


def test_pad_arrays_right_pads_and_masks():
    ids, mask = pad_arrays([np.array([101, 7, 102]), np.array([101, 102]), np.array([101, 5, 6, 102])], pad_id=0)
    assert ids.tolist() == [[101, 7, 102, 0], [101, 102, 0, 0], [101, 5, 6, 102]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    assert ids.dtype == mask.dtype == np.int64
    with pytest.raises(ValueError, match="empty batch"):
        pad_arrays([], 0)


def _sum_runner(input_ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per row: the sum and count of its real tokens (depends on the row alone)."""
    return {"sum": (input_ids * mask).sum(1, keepdims=True), "count": mask.sum(1)}


@pytest.mark.parametrize("workers", [1, 2])
def test_run_batches_returns_rows_in_input_order(encoder, rt_texts, workers):
    ids = encoder.text_tokenizer.tokenize(rt_texts).ids
    out = run_batches(ids, _sum_runner, batch_size=7, pad_id=0, workers=workers)
    assert out["sum"][:, 0].tolist() == [int(x.sum()) for x in ids]
    assert out["count"].tolist() == [len(x) for x in ids]


def test_a_failing_batch_raises_in_the_caller(encoder, rt_texts):
    ids = encoder.text_tokenizer.tokenize(rt_texts).ids

    def failing(input_ids, mask):
        if input_ids.shape[1] < 20:
            raise RuntimeError("batch failed")
        return _sum_runner(input_ids, mask)

    with pytest.raises(RuntimeError, match="batch failed"):
        run_batches(ids, failing, batch_size=8, pad_id=0, workers=2)


def test_peak_flops_is_cores_times_clock_times_flops_per_cycle():
    zen4 = CpuInfo("AMD EPYC", "AuthenticAMD", 25, 2, 2.6, frozenset({"avx512f", "avx512_bf16", "avx512_vnni", "fma", "avx2"}))
    assert zen4.fp32_flops_per_cycle() == 32 and zen4.bf16_flops_per_cycle() == 64 and zen4.int8_ops_per_cycle() == 128
    assert zen4.peak_flops("fp32") == pytest.approx(2 * 2.6e9 * 32)
    assert zen4.native_bf16
    xeon = CpuInfo("Xeon", "GenuineIntel", 6, 4, 2.0, frozenset({"avx512f", "amx_bf16"}))
    assert xeon.fp32_flops_per_cycle() == 64 and xeon.bf16_flops_per_cycle() == 2048
    with pytest.raises(ValueError, match="precision"):
        zen4.peak_flops("fp8")
    assert cpu_info().cores >= 1
