"""The GPU fast paths' logic, checked on a CPU: length buckets, token ids packed on the device, a step that
never waits for the device (sums and non-finite flags read at log steps), fused AdamW's choice, compile's
fallback, and `mixed_precision: auto`'s GPU probe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from polyhead.encoder import SentenceEncoder
from polyhead.training import load_config, train
from polyhead.training.compiled import CompiledForward, compile_mode
from polyhead.training.device_ids import PackedIds
from polyhead.training.optim import _fused_supported
from polyhead.training.precision import resolve_precision
from polyhead.training.step_tally import NonFiniteWatch, StepTally

from .conftest import small_config, write_config


@pytest.fixture(scope="module")
def tiny_encoder(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder(str(tiny_bert_dir), max_seq_length=40, device="cpu")


def _ids(tokenizer) -> list[np.ndarray]:
    texts = ["a short one", "a much longer sentence that goes on and on " * 8, "mid length text here please", "x"]
    return tokenizer.tokenize(texts).ids


@pytest.mark.parametrize("multiple", [1, 8, 16])
def test_packed_batches_equal_the_tokenizers_padding_in_length_buckets(tiny_encoder, multiple):
    tokenizer = tiny_encoder.text_tokenizer
    ids = _ids(tokenizer)
    packed = PackedIds(ids, tokenizer.pad_id, torch.device("cpu"), multiple, tokenizer.max_seq_length)
    for indices in ([0], [0, 2], [3, 1, 0], [2, 3]):
        got = packed.batch(indices)
        want = tokenizer.pad([ids[i] for i in indices], multiple)
        assert torch.equal(got["input_ids"], want["input_ids"]) and torch.equal(got["attention_mask"], want["attention_mask"])
        width = got["input_ids"].shape[1]
        longest = max(len(ids[i]) for i in indices)
        assert width >= longest and width == packed.width(indices)
        assert width <= max(longest, tokenizer.max_seq_length), "a bucket never passes max_seq_length"
        assert width % multiple == 0 or width == tokenizer.max_seq_length
    assert packed.batch([1])["input_ids"].shape[1] == 40, "the longest text (cut at 40) pads to the cap, not to 48"


def test_a_token_state_cache_on_the_device_gathers_what_the_host_one_does():
    """The GPU keeps a cache that fits in device memory; its index arithmetic is checked here against the host buffer."""
    from polyhead.training.frozen_cache import TokenStateCache

    lengths = np.array([3, 7, 1, 5])
    generator = torch.Generator().manual_seed(0)
    host, device = TokenStateCache(lengths, 4, None), TokenStateCache(lengths, 4, None, torch.device("cpu"))
    assert device.device_rows is not None and host.device_rows is None
    for chunk in (np.array([2, 0]), np.array([3, 1])):
        states = torch.randn(len(chunk), 9, 4, generator=generator)  # padded past the longest: only real tokens are kept
        host.put(chunk, states)
        device.put(chunk, states)
    assert host.filled.all() and device.filled.all()
    for indices, width in (([1, 2], None), ([0, 3, 1], 16), ([2], 8)):
        want, got = host.gather(indices, width), device.gather(indices, width)
        assert torch.equal(got, want) and got.shape == (len(indices), width or int(lengths[indices].max()), 4)


def test_the_device_tally_logs_what_summing_python_floats_logged():
    """Float64 sums in batch order: the same means as `float(loss)` per batch summed in Python, then read as float32."""
    generator = torch.Generator().manual_seed(0)
    losses = [torch.rand((), generator=generator) * 3 for _ in range(7)]
    tasks = ["a", "b", "a", "a", "b", "a", "b"]
    tally = StepTally(torch.device("cpu"))
    python_sums: dict[str, list[float]] = {}
    for task, loss in zip(tasks, losses):
        tally.add(task, loss, 8, [3, 5, 4])
        sums = python_sums.setdefault(task, [0.0, 0.0])
        sums[0] += float(loss)
        sums[1] += 1

    class One:  # the single-process accelerator's part that mean_losses reads
        device = torch.device("cpu")

    old = torch.tensor([python_sums[t] for t in ("a", "b")])
    expected = {t: float(old[i, 0] / old[i, 1]) for i, t in enumerate(("a", "b"))}
    assert tally.mean_losses(One(), ["a", "b", "c"], 1) == expected
    assert tally.examples == {"a": 32, "b": 24}
    assert tally.padding_ratio() == {"a": round(15 / 12, 4), "b": round(15 / 12, 4)}
    bucketed = StepTally()
    bucketed.add("a", losses[0], 3, [3, 5, 4], width=16)
    assert bucketed.padding_ratio() == {"a": round(48 / 12, 4)}, "padded tokens count the bucket's width"


def test_the_non_finite_watch_keeps_the_first_bad_step_and_its_task():
    watch = NonFiniteWatch(torch.device("cpu"), ["topic", "sentiment"])
    watch.note(1, torch.tensor(0.5), "topic")
    assert watch.read() == (0, None)
    watch.note(2, torch.tensor(float("nan")), "sentiment")
    watch.note(3, torch.tensor(float("inf")), "topic")
    watch.note(3, torch.tensor(float("inf")))
    assert watch.read() == (2, "sentiment"), "the first bad step wins"
    gradients = NonFiniteWatch(torch.device("cpu"), ["topic"])
    gradients.note(4, torch.tensor(float("inf")))
    assert gradients.read() == (4, None), "a gradient norm names no task"


class _TwoProcesses:
    """Accelerate's reduce across two processes, for the watch's bookkeeping (the collective itself is Accelerate's)."""

    def __init__(self, other: NonFiniteWatch) -> None:
        self.other = other

    def reduce(self, tensor: torch.Tensor, op: str) -> torch.Tensor:
        assert op == "max"
        return torch.maximum(tensor, -self.other.code())


def test_under_several_processes_the_earliest_bad_step_keeps_its_own_task():
    tasks = ["topic", "sentiment"]
    late_first_task = NonFiniteWatch(torch.device("cpu"), tasks)
    late_first_task.note(5, torch.tensor(float("nan")), "topic")
    early_second_task = NonFiniteWatch(torch.device("cpu"), tasks)
    early_second_task.note(3, torch.tensor(float("nan")), "sentiment")
    clean = NonFiniteWatch(torch.device("cpu"), tasks)

    def across(mine: NonFiniteWatch, theirs: NonFiniteWatch) -> tuple[int, str | None]:
        return mine.read(_TwoProcesses(theirs), world=2)

    assert across(late_first_task, early_second_task) == (3, "sentiment")
    assert across(early_second_task, late_first_task) == (3, "sentiment")
    assert across(clean, late_first_task) == (5, "topic")
    assert across(clean, clean) == (0, None)


def test_fused_adamw_only_where_every_parameter_sits_on_one_device_it_supports():
    cpu = [torch.nn.Parameter(torch.zeros(3))]
    meta = [torch.nn.Parameter(torch.zeros(3, device="meta"))]
    assert _fused_supported([{"params": cpu}]), "the CPU's fused kernel is kept (several times faster than the loop)"
    assert not _fused_supported([{"params": meta}])
    assert not _fused_supported([{"params": cpu + meta}]), "one device for all"
    assert not _fused_supported([{"params": []}])
    if torch.cuda.is_available():
        assert _fused_supported([{"params": [torch.nn.Parameter(torch.zeros(3, device="cuda"))]}])
        assert not _fused_supported([{"params": cpu + [torch.nn.Parameter(torch.zeros(3, device="cuda"))]}])


def test_compile_mode_uses_cuda_graphs_only_on_a_gpu():
    assert compile_mode("cuda") == "reduce-overhead"
    assert compile_mode("cpu") is None


def _forward_backward(call, module, ids, mask):
    module.zero_grad(set_to_none=True)
    out = call(input_ids=ids, attention_mask=mask)[0]
    out.pow(2).mean().backward()
    return out.detach(), {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def test_a_failed_compile_falls_back_to_eager_once_with_the_same_results(tiny_bert_dir):
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(str(tiny_bert_dir)).train()
    torch.manual_seed(0)
    ids, mask = torch.randint(5, 100, (4, 16)), torch.ones(4, 16, dtype=torch.long)

    def failing_backend(graph, example_inputs):
        raise RuntimeError("capture failed\nsecond line")

    reports: list[str] = []
    forward = CompiledForward(backbone, True, "cpu", reports.append, backend=failing_backend)
    assert forward.active
    torch.manual_seed(1)
    got, got_grads = _forward_backward(forward, backbone, ids, mask)
    torch.manual_seed(1)
    want, want_grads = _forward_backward(backbone, backbone, ids, mask)
    assert torch.equal(got, want) and all(torch.equal(got_grads[n], want_grads[n]) for n in want_grads)
    assert not forward.active and len(reports) == 1 and "capture failed" in reports[0] and "second line" not in reports[0]
    _forward_backward(forward, backbone, ids, mask)
    assert len(reports) == 1, "said once"


def test_a_compiled_forward_and_backward_equal_eager(tiny_bert_dir):
    """aot_eager traces and splits forward and backward as inductor does, without a C++ build (fast on a CPU)."""
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(str(tiny_bert_dir)).eval()  # no dropout: the same numbers both ways
    ids, mask = torch.randint(5, 100, (4, 16)), torch.ones(4, 16, dtype=torch.long)
    mask[1, 10:] = 0
    forward = CompiledForward(backbone, True, "cpu", backend="aot_eager")
    got, got_grads = _forward_backward(forward, backbone, ids, mask)
    assert forward.active, forward.failure
    want, want_grads = _forward_backward(backbone, backbone, ids, mask)
    assert torch.allclose(got, want, atol=1e-5)
    assert want_grads.keys() <= got_grads.keys() and all(torch.allclose(got_grads[n], want_grads[n], atol=1e-5) for n in want_grads)
    assert all(not got_grads[n].any() for n in got_grads.keys() - want_grads.keys()), "unused parts get zeros, not None"


def test_auto_precision_on_a_cpu_never_probes(monkeypatch):
    import polyhead.inference.backends as backends

    def probe():
        raise AssertionError("a CPU run must not time anything")

    for native in (False, True):
        monkeypatch.setattr(backends, "bf16_available", lambda device_type, native=native: native)
        choice = resolve_precision("auto", "cpu", probe=probe)
        assert choice.used == ("bf16" if native else "no") and choice.probe is None and "probe" not in choice.to_dict()


def test_auto_precision_on_a_gpu_takes_bf16_only_where_it_timed_faster(monkeypatch):
    import polyhead.inference.backends as backends

    monkeypatch.setattr(backends, "bf16_available", lambda device_type: True)
    slower = resolve_precision("auto", "cuda", probe=lambda: {"fp32_ms": 2.0, "bf16_ms": 3.5, "batch": 32, "width": 64})
    assert slower.used == "no" and "3.50 ms in bf16, 2.00 ms in fp32" in slower.reason
    assert slower.to_dict()["probe"]["bf16_ms"] == 3.5, "the timings go into the start event"
    faster = resolve_precision("auto", "cuda", probe=lambda: {"fp32_ms": 2.0, "bf16_ms": 1.2})
    assert faster.used == "bf16"
    assert resolve_precision("no", "cuda", probe=lambda: {"fp32_ms": 2.0, "bf16_ms": 1.2}).used == "no", "explicit wins"

    def broken():
        raise RuntimeError("out of memory")

    fallback = resolve_precision("auto", "cuda", probe=broken)
    assert fallback.used == "bf16" and "out of memory" in fallback.to_dict()["probe"]["error"]


def _log(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_run_in_length_buckets_records_them_and_pads_to_them(tmp_path, tiny_bert_dir):
    """Under a frozen lower layer too: the cached states pad to the same bucket as the token ids."""
    config = small_config(str(tiny_bert_dir), tmp_path / "run", tasks=("sentiment",), max_steps=4, eval_every=4,
                          mixed_precision="no", pad_to_multiple=16)
    config["freeze"] = {"lower": 1}
    result = train(load_config(write_config(tmp_path / "run.yaml", config)))
    log = _log(result.run_dir)
    start = next(r for r in log if r.get("message") == "start")
    assert start["pad_to_multiple"] == 16 and start["compile"] is False
    assert next(r for r in log if r.get("frozen_cache"))["frozen_cache"]["cut"] == "layer"
    ratios = [r["padding_ratio"]["sentiment"] for r in log if r["type"] == "train"]
    assert ratios and all(r > 1.0 for r in ratios)


def test_the_default_on_a_cpu_is_no_buckets(tmp_path, tiny_bert_dir):
    config = small_config(str(tiny_bert_dir), tmp_path / "run", tasks=("sentiment",), max_steps=2, eval_every=2, log_every=2,
                          mixed_precision="no")
    log = _log(train(load_config(write_config(tmp_path / "run.yaml", config))).run_dir)
    assert next(r for r in log if r.get("message") == "start")["pad_to_multiple"] == (16 if torch.cuda.is_available() else 1)


def _sentiment_losses(tmp_path, tiny_bert_dir, name: str, **training) -> tuple[list[float], list[dict]]:
    config = small_config(str(tiny_bert_dir), tmp_path / name, tasks=("sentiment",), max_steps=4, eval_every=4, log_every=2,
                          mixed_precision="no", **training)
    log = _log(train(load_config(write_config(tmp_path / f"{name}.yaml", config))).run_dir)
    return [r["loss"]["sentiment"] for r in log if r["type"] == "train"], log


def test_training_compile_runs_compiled_or_falls_back_and_logs_the_same_losses(tmp_path, tiny_bert_dir, monkeypatch):
    """Inductor on a CPU takes minutes to build a tiny BERT's kernels (it does work: same losses to 1e-7), so the run here
    compiles with aot_eager (the same tracing and forward/backward split); a backend that raises shows the fallback."""
    import polyhead.training.compiled as compiled

    eager, _ = _sentiment_losses(tmp_path, tiny_bert_dir, "eager", pad_to_multiple=16)
    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    traced, log = _sentiment_losses(tmp_path, tiny_bert_dir, "traced", compile=True)
    assert not [r for r in log if "training.compile failed" in str(r.get("message"))]
    assert next(r for r in log if r.get("message") == "start")["pad_to_multiple"] == 16, "compiled graphs are kept per bucket"
    assert np.allclose(traced, eager, rtol=1e-5, atol=1e-6) and len(eager) == 2

    def failing_backend(graph, example_inputs):
        raise RuntimeError("no graph today")

    monkeypatch.setattr(compiled, "BACKEND", failing_backend)
    fallen, log = _sentiment_losses(tmp_path, tiny_bert_dir, "fallen", compile=True)
    failures = [r["message"] for r in log if "training.compile failed" in str(r.get("message"))]
    assert len(failures) == 1 and "no graph today" in failures[0]
    assert fallen == eager, "eager after the fallback: the very same numbers"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs and the bf16 probe need a GPU")
def test_on_a_gpu_a_compiled_bucketed_run_matches_eager(tmp_path, tiny_bert_dir):
    losses = {}
    for compiled in (False, True):
        config = small_config(str(tiny_bert_dir), tmp_path / str(compiled), tasks=("sentiment",), max_steps=6, eval_every=6,
                              log_every=2, mixed_precision="bf16", compile=compiled)
        log = _log(train(load_config(write_config(tmp_path / f"{compiled}.yaml", config))).run_dir)
        assert not any("training.compile failed" in str(r.get("message")) for r in log)
        losses[compiled] = [r["loss"]["sentiment"] for r in log if r["type"] == "train"]
    assert np.allclose(losses[True], losses[False], rtol=0.05), losses


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the precision probe times a GPU")
def test_the_gpu_precision_probe_times_both_and_caches(tiny_bert_dir):
    from polyhead.training.precision_probe import probe_precision

    first = probe_precision(str(tiny_bert_dir), 8, 32, rounds=2, warmup=1)
    assert first["fp32_ms"] > 0 and first["bf16_ms"] > 0 and first["width"] == 32 and first["batch"] == 8
    assert probe_precision(str(tiny_bert_dir), 8, 32) is first, "one probe per GPU, model and shape in a process"


def test_a_runs_logged_losses_are_its_batches_python_float_means(tmp_path, tiny_bert_dir):
    """The old step read every batch's loss with float(); the new one sums on the device. Here a real run's step records
    float(loss) per batch beside it: the logged means are exactly what summing those floats gave."""
    from polyhead.training.loop import Trainer

    config = small_config(str(tiny_bert_dir), tmp_path / "run", max_steps=6, log_every=3, eval_every=6, mixed_precision="no")
    trainer = Trainer(load_config(write_config(tmp_path / "run.yaml", config)), resume=False, base_dir=tmp_path)
    real, seen = trainer.forward, []

    def recording(*args, **kwargs):
        weighted, raw = real(*args, **kwargs)
        seen.append((kwargs["task"], float(raw.detach())))
        return weighted, raw

    trainer.forward = recording
    for _ in range(2):
        seen.clear()
        for _ in range(3):
            trainer.train_step()
        trainer.check_finite()
        logged = trainer.log_training()
        sums: dict[str, list[float]] = {}
        for task, value in seen:
            entry = sums.setdefault(task, [0.0, 0.0])
            entry[0] += value
            entry[1] += 1
        old = {task: float(torch.tensor(entry)[0] / torch.tensor(entry)[1]) for task, entry in sums.items()}
        assert logged == old and len(seen) == 3


def test_a_non_finite_loss_between_checks_is_named_by_its_first_step_and_nothing_bad_is_saved(tmp_path, tiny_bert_dir):
    """Flags are read at log, evaluation and checkpoint steps only: step 2's overflow is found at step 3, before step 3's
    checkpoint would have saved overflowed weights."""
    from polyhead.training.loop import TrainingError

    config = small_config(str(tiny_bert_dir), tmp_path / "run", max_steps=12, log_every=3, checkpoint_every=3, eval_every=100,
                          learning_rate=1e30, head_learning_rate=1e30, warmup_ratio=0.0, max_grad_norm=None)
    with pytest.raises(TrainingError) as stopped:
        train(load_config(write_config(tmp_path / "c.yaml", config)))
    assert "became non-finite at step 2; training stopped (found at step 3)" in str(stopped.value)
    assert "(step none yet)" in str(stopped.value)
    assert not (tmp_path / "run" / "checkpoints" / "last").exists()
    assert not [r for r in _log(tmp_path / "run") if r["type"] == "train"], "no loss line with a non-finite mean was written"
