"""`auto` by measurement: the decision rule, the probe's alternation and timing, and its caching."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from polyhead import SentenceEncoder
from polyhead.inference.auto_probe import (
    DecisionStore,
    ProbeResult,
    decide,
    probe_enabled,
    probe_texts,
    run_probe,
    store_key,
)


def test_decide_takes_the_fastest_backend_within_the_cosine_bar():
    seconds = {"torch": 1.0, "torch-bf16": 0.5}
    assert decide(seconds, {"torch": 1.0, "torch-bf16": 0.9995}, 0.999) == "torch-bf16"
    # bf16 faster but too far from fp32: fp32 stays.
    assert decide(seconds, {"torch": 1.0, "torch-bf16": 0.998}, 0.999) == "torch"
    # bf16 close enough but slower (what the H200 showed before the attention fix): fp32.
    assert decide({"torch": 0.4, "torch-bf16": 0.9}, {"torch-bf16": 1.0}, 0.999) == "torch"
    # A tie goes to the exact one.
    assert decide({"torch-bf16": 0.5, "torch": 0.5}, {"torch-bf16": 1.0}, 0.999) == "torch"


class FakeClock:
    """A clock that advances only when a fake backend 'runs' (its cost per text is set per backend)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def backend(self, cost_per_text: float, vectors: np.ndarray, calls: list[str], name: str):
        def encode(texts: list[str]) -> np.ndarray:
            calls.append(name)
            self.now += cost_per_text * len(texts)
            return vectors[: len(texts)]

        return encode


def test_run_probe_warms_each_candidate_then_alternates_and_takes_medians():
    clock, calls = FakeClock(), []
    rng = np.random.default_rng(0)
    exact = rng.normal(size=(8, 4)).astype(np.float32)
    close = exact + 1e-4 * rng.normal(size=exact.shape).astype(np.float32)
    encoders = {"torch": clock.backend(2.0, exact, calls, "torch"), "torch-bf16": clock.backend(1.0, close, calls, "torch-bf16")}
    result = run_probe(encoders, ["t"] * 8, clock, min_cos=0.999, rounds=3)
    assert calls == ["torch", "torch-bf16"] + ["torch", "torch-bf16"] * 3
    assert result.seconds == {"torch": 16.0, "torch-bf16": 8.0}
    assert result.min_cosine["torch"] == pytest.approx(1.0)
    assert result.min_cosine["torch-bf16"] > 0.999
    assert result.choice == "torch-bf16"


def test_probe_texts_cycle_a_short_call_and_sample_a_long_one_over_lengths():
    assert probe_texts(["a", "bb"], 5) == ["a", "bb", "a", "bb", "a"]
    texts = ["x" * n for n in range(100, 0, -1)]
    sample = probe_texts(texts, 5)
    assert [len(t) for t in sample] == [1, 26, 51, 75, 100]
    assert probe_texts([], 5) == []


def test_probe_runs_on_gpus_by_default_and_on_request_elsewhere(monkeypatch):
    monkeypatch.delenv("POLYHEAD_AUTO_PROBE", raising=False)
    assert probe_enabled("cuda") and not probe_enabled("cpu")
    monkeypatch.setenv("POLYHEAD_AUTO_PROBE", "1")
    assert probe_enabled("cpu")
    monkeypatch.setenv("POLYHEAD_AUTO_PROBE", "0")
    assert not probe_enabled("cuda")
    monkeypatch.setenv("POLYHEAD_AUTO_PROBE", "yes")
    with pytest.raises(ValueError, match="POLYHEAD_AUTO_PROBE"):
        probe_enabled("cpu")


def test_decision_store_keeps_decisions_in_memory_and_in_its_file(tmp_path):
    path = tmp_path / "auto.json"
    key = store_key(str(tmp_path), "NVIDIA H200", "2.13.0")
    result = ProbeResult("torch-bf16", {"torch": 0.2, "torch-bf16": 0.1}, {"torch": 1.0, "torch-bf16": 0.9999})
    DecisionStore(path).put(key, result)
    assert DecisionStore(path).get(key) == result  # a new process reads it back
    assert str(tmp_path.resolve()) in next(iter(json.loads(path.read_text())))
    assert DecisionStore(path).get(store_key(str(tmp_path), "NVIDIA H100", "2.13.0")) is None
    path.write_text("{not json")
    assert DecisionStore(path).get(key) is None  # a damaged cache means: probe again


@pytest.fixture
def probing_encoder(tiny_model_dir, monkeypatch, tmp_path):
    """A fresh tiny encoder whose `auto` is probed (as on a GPU), with a fake clock and its own store."""
    monkeypatch.setenv("POLYHEAD_AUTO_PROBE", "1")
    encoder = SentenceEncoder(tiny_model_dir("bert"), device="cpu")
    encoder._runners.store = DecisionStore(tmp_path / "auto.json")
    return encoder


def scripted_clock(seconds_per_call: dict[str, float], encoder: SentenceEncoder):
    """A clock advanced by each probe encode according to the backend it used (a real encode still runs)."""
    clock = FakeClock()
    original = encoder.encode

    def encode(texts, *args, backend=None, **options):
        result = original(texts, *args, backend=backend, **options)
        clock.now += seconds_per_call.get(backend, 0.0)
        return result

    encoder.encode = encode  # the probe encodes through the encoder's public method
    return clock


@pytest.mark.parametrize("bf16_seconds, expected", [(0.1, "torch-bf16"), (3.0, "torch")])
def test_auto_takes_what_the_probe_measured_and_probes_once(probing_encoder, rt_texts, bf16_seconds, expected):
    encoder = probing_encoder
    clock = scripted_clock({"torch": 1.0, "torch-bf16": bf16_seconds}, encoder)
    encoder._runners.timer = clock
    encoder.encode(rt_texts[:20], backend="auto")
    probe = encoder._runners.last_probe
    assert probe.seconds == pytest.approx({"torch": 1.0, "torch-bf16": bf16_seconds})
    assert probe.min_cosine["torch-bf16"] > 0.99  # measured on the real (tiny) model's bf16 path
    assert probe.choice == expected and encoder.last_encode_stats.backend == expected
    ticks = clock.now
    encoder.encode(rt_texts[20:40], backend="auto")
    assert clock.now == ticks  # cached in memory: no second probe
    assert encoder.last_encode_stats.backend == expected


def test_a_second_encoder_of_the_same_model_reuses_the_stored_decision(probing_encoder, rt_texts, tiny_model_dir):
    first = probing_encoder
    first._runners.timer = scripted_clock({"torch": 1.0, "torch-bf16": 0.1}, first)
    first.encode(rt_texts[:10], backend="auto")
    second = SentenceEncoder(tiny_model_dir("bert"), device="cpu")
    second._runners.store = DecisionStore(first._runners.store.path)
    calls = []
    second._runners.timer = lambda: calls.append(1) or 0.0
    second.encode(rt_texts[:10], backend="auto")
    assert calls == []  # no timing: the decision came from the store's file
    assert second.last_encode_stats.backend == "torch-bf16"


def test_a_deep_copy_probes_afresh_for_its_own_weights(probing_encoder, rt_texts):
    encoder = probing_encoder
    encoder._runners.timer = scripted_clock({"torch": 1.0, "torch-bf16": 3.0}, encoder)
    encoder.encode(rt_texts[:10], backend="auto")
    twin = copy.deepcopy(encoder)
    assert twin._runners.last_probe is None and twin._runners.store is None


def test_a_faster_bf16_too_far_from_fp32_is_refused_with_a_warning(probing_encoder, rt_texts, monkeypatch):
    import polyhead.inference.runners as runners
    from polyhead.inference.runners import AutoFallbackWarning

    monkeypatch.setattr(runners, "MIN_AUTO_COSINE", 1.01)  # a bar no bf16 vector can reach
    encoder = probing_encoder
    encoder._runners.timer = scripted_clock({"torch": 1.0, "torch-bf16": 0.1}, encoder)
    with pytest.warns(AutoFallbackWarning, match="bf16 was faster"):
        encoder.encode(rt_texts[:10], backend="auto")
    assert encoder.last_encode_stats.backend == "torch"


def test_a_candidate_that_fails_on_this_model_is_left_out_but_the_references_failure_is_raised():
    clock, calls = FakeClock(), []
    vectors = np.eye(4, dtype=np.float32)

    def broken(texts):
        raise RuntimeError("no bf16 kernel for this op")

    result = run_probe({"torch": clock.backend(1.0, vectors, calls, "torch"), "torch-bf16": broken}, ["t"] * 4, clock, 0.999)
    assert result.choice == "torch" and set(result.seconds) == {"torch"}
    with pytest.raises(RuntimeError, match="no bf16 kernel"):
        run_probe({"torch": broken}, ["t"], clock, 0.999)
