"""Backend choice: auto stays within cosine 0.999 of fp32, overrides work, bad names fail clearly."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec
from polyhead.inference import BACKENDS, LossyBackendWarning, auto_backend, get_threads, set_threads
from polyhead.inference.runners import AutoFallbackWarning
from polyhead.similarity import row_cosines
from tests.conftest import native_bf16_cpu


@pytest.fixture(scope="module")
def reference(encoder, rt_texts):
    """fp32 embeddings of the 200 real texts (backend torch)."""
    return encoder.encode(rt_texts, backend="torch")


def test_torch_backend_equals_sentence_transformers(reference, st_model, rt_texts):
    assert np.abs(reference - st_model.encode(rt_texts)).max() <= 1e-5


@pytest.fixture(scope="module")
def bf16_encoder(encoder):
    """A copy of the shared encoder whose automatic choice is made afresh (under `force_bf16`)."""
    return copy.deepcopy(encoder)


def test_automatic_choice_stays_within_cosine_0999_of_fp32(bf16_encoder, reference, rt_texts, force_bf16):
    """The bf16 path itself (forced, so a CPU without bf16 hardware does not compare fp32 with fp32)."""
    texts, expected = rt_texts[:32], reference[:32]
    vectors = bf16_encoder.encode(texts, backend="auto")
    assert bf16_encoder.last_encode_stats.backend == "torch-bf16"
    assert row_cosines(vectors, expected).min() >= 0.999
    assert np.abs(vectors - expected).max() > 1e-5, "bf16 ran, so the vectors are not fp32's"


def test_auto_takes_bf16_exactly_where_the_cpu_has_it(encoder, tiny_model_dir, rt_texts):
    """Unforced, `auto` follows the CPU's flags as /proc/cpuinfo lists them (read by the test itself)."""
    expected = "torch-bf16" if native_bf16_cpu() else "torch"
    assert auto_backend("cpu") == expected
    tiny = SentenceEncoder(tiny_model_dir("bert"), device="cpu")
    vectors = tiny.encode(rt_texts[:8], backend="auto")
    assert tiny.last_encode_stats.backend == expected
    if expected == "torch":
        assert np.array_equal(vectors, tiny.encode(rt_texts[:8], backend="torch"))


def test_auto_falls_back_to_fp32_with_a_warning_when_bf16_drifts(tiny_model_dir, rt_texts, force_bf16):
    """A model whose bf16 embeddings leave cosine 0.999 of fp32 gets fp32 from `auto`, and says so.

    Biases near 1000 on the last feed-forward output: fp32 keeps the small signal beside
    them, while bf16 (8 bits of mantissa: steps of 4 near 1000) rounds each output by up
    to 2, so the LayerNorm after it sees mostly rounding noise and bf16 drifts from fp32.
    """
    texts = rt_texts[:12]
    drifting = SentenceEncoder(tiny_model_dir("bert"), device="cpu", normalize=True)
    with torch.no_grad():
        bias = drifting.backbone.encoder.layer[-1].output.dense.bias
        bias.add_(torch.linspace(1000.0, 1010.0, bias.numel()))
    fp32 = drifting.encode(texts, backend="torch")
    assert row_cosines(drifting.encode(texts, backend="torch-bf16"), fp32).min() < 0.999, "the model must drift in bf16"
    with pytest.warns(AutoFallbackWarning, match=r"bf16 embeddings of this model reach only cosine .* backend 'auto' uses fp32"):
        vectors = drifting.encode(texts, backend="auto")
    assert drifting.last_encode_stats.backend == "torch"
    assert np.array_equal(vectors, fp32)
    steady = SentenceEncoder(tiny_model_dir("bert"), device="cpu", normalize=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutoFallbackWarning)
        steady.encode(texts, backend="auto")
    assert steady.last_encode_stats.backend == "torch-bf16"


def test_every_backend_is_close_to_fp32_and_reports_itself(tiny_model_dir, rt_texts):
    tiny = SentenceEncoder(tiny_model_dir("bert"), device="cpu", normalize=True)
    texts = rt_texts[:40]
    fp32 = tiny.encode(texts, backend="torch")
    for backend, floor in (("torch-bf16", 0.999), ("onnx", 0.99999)):
        vectors = tiny.encode(texts, backend=backend)
        assert tiny.last_encode_stats.backend == backend
        assert row_cosines(vectors, fp32).min() >= floor, backend
    with pytest.warns(LossyBackendWarning, match="min cosine"):
        lossy = tiny.encode(texts, backend="onnx-int8")
    assert row_cosines(lossy, fp32).min() < 0.99999


def test_constructor_backend_is_the_default_and_encode_overrides_it(tiny_model_dir, rt_texts):
    tiny = SentenceEncoder(tiny_model_dir("bert"), device="cpu", backend="torch-bf16")
    tiny.encode(rt_texts[:5])
    assert tiny.last_encode_stats.backend == "torch-bf16"
    tiny.encode(rt_texts[:5], backend="torch")
    assert tiny.last_encode_stats.backend == "torch"


def test_environment_sets_the_default(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("POLYHEAD_BACKEND", "torch")
    assert SentenceEncoder(tiny_model_dir("bert"), device="cpu").backend == "torch"
    monkeypatch.setenv("POLYHEAD_BACKEND", "turbo")
    with pytest.raises(ValueError, match="unknown backend 'turbo'"):
        SentenceEncoder(tiny_model_dir("bert"), device="cpu")


def test_bad_backend_name_is_a_clear_value_error(encoder, tiny_model_dir):
    with pytest.raises(ValueError, match=r"unknown backend 'fast'; choose one of " + ", ".join(BACKENDS)):
        encoder.encode(["a text"], backend="fast")
    with pytest.raises(ValueError, match="unknown backend"):
        SentenceEncoder(tiny_model_dir("bert"), device="cpu", backend="int4")


def test_changed_weights_rebuild_the_fast_paths(tiny_model_dir, rt_texts):
    tiny = SentenceEncoder(tiny_model_dir("bert"), device="cpu")
    texts = rt_texts[:16]
    before = tiny.encode(texts, backend="torch-bf16")
    torch.manual_seed(1)
    with torch.no_grad():  # an in-place update, as an optimizer step makes
        for parameter in tiny.backbone.encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    after, fp32 = tiny.encode(texts, backend="torch-bf16"), tiny.encode(texts, backend="torch")
    assert row_cosines(after, fp32).min() >= 0.999
    assert row_cosines(after, before).min() < 0.99


def test_an_encoder_with_built_fast_paths_still_copies_and_pickles(tiny_model_dir, rt_texts):
    import copy
    import pickle

    tiny = SentenceEncoder(tiny_model_dir("bert"), device="cpu")
    expected = tiny.encode(rt_texts[:8], backend="torch-bf16")
    for twin in (copy.deepcopy(tiny), pickle.loads(pickle.dumps(tiny))):
        assert np.abs(twin.encode(rt_texts[:8], backend="torch-bf16") - expected).max() <= 1e-6


def test_predict_takes_a_backend(bf16_encoder, rt_texts, force_bf16):
    """The default (`auto`, here bf16: forced) predicts within 0.01 of the exact path's probabilities."""
    torch.manual_seed(0)
    model = MultiTaskModel(bf16_encoder, [TaskSpec("sentiment", ["fresh", "rotten"])])
    exact = model.predict_probabilities(rt_texts[:24], backend="torch")["sentiment"]
    fast = model.predict_probabilities(rt_texts[:24], backend="auto")["sentiment"]
    assert bf16_encoder.last_encode_stats.backend == "torch-bf16"
    assert 0 < torch.abs(exact - fast).max() <= 0.01
    with pytest.raises(ValueError, match="unknown backend"):
        model.predict(rt_texts[:2], backend="nope")


def test_threads_limit_and_results_do_not_depend_on_them(encoder, reference, rt_texts):
    original = get_threads()
    try:
        set_threads(1)
        assert get_threads() == 1 and torch.get_num_threads() == 1
        assert np.abs(encoder.encode(rt_texts, backend="torch") - reference).max() <= 1e-5
    finally:
        set_threads(None)
    assert get_threads() == original
    with pytest.raises(ValueError, match="positive integer"):
        set_threads(0)


def test_progress_callback_counts_every_text_and_token(encoder, rt_texts):
    seen = []
    encoder.encode(rt_texts, batch_size=16, backend="torch", progress=lambda texts, tokens: seen.append((texts, tokens)))
    assert len(seen) == 13
    assert sum(t for t, _ in seen) == 200
    assert sum(k for _, k in seen) == encoder.last_encode_stats.tokens
