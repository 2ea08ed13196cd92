"""Export -> ONNX Runtime gives the PyTorch model's embeddings and probabilities, on real texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec
from polyhead.cli import main
from polyhead.inference import OnnxEncoder, OnnxManifest, OnnxModel, export_onnx, load_exported
from polyhead.similarity import row_cosines

TINY_KINDS = ("bert", "distilbert", "roberta", "mpnet")


@pytest.fixture(scope="module")
def multitask(encoder):
    """The real default encoder with two (randomly initialised) heads: an MLP and a linear one."""
    torch.manual_seed(3)
    return MultiTaskModel(encoder, [TaskSpec("sentiment", ["fresh", "rotten"]), TaskSpec("topic", ["a", "b", "c"])])


@pytest.fixture(scope="module")
def exported(multitask, sentiment, tmp_path_factory):
    """The multi-task model saved, then exported by `polyhead export --quantize` (dynamic: fast; cost on 100 real texts).

    The calibrated static graph is tested on a tiny model (test_static_int8.py) and measured on this one by `make bench`.
    """
    root = tmp_path_factory.mktemp("export")
    multitask.save(root / "model")
    reference = root / "reference.jsonl"
    reference.write_text("".join(json.dumps({"text": t}) + "\n" for t in sentiment.validation.texts[:100]), encoding="utf-8")
    code = main(["export", str(root / "model"), "-o", str(root / "onnx"), "--quantize", "--int8-method", "dynamic", "--reference", str(reference)])
    assert code == 0
    return root / "onnx"


def test_export_directory_holds_graphs_tokenizer_and_manifest(exported):
    names = {p.name for p in exported.iterdir()}
    assert {"model.onnx", "model_int8.onnx", "tokenizer.json", "polyhead_onnx.json"} <= names
    assert not [n for n in names if n.startswith("raw") or n.startswith(".")]
    manifest = OnnxManifest.load(exported)
    assert manifest.outputs == ["embedding", "pooled_embedding", "probabilities_0", "probabilities_1"]
    assert [t["name"] for t in manifest.tasks] == ["sentiment", "topic"]
    fp32 = manifest.graphs["fp32"]
    assert fp32.optimized and fp32.fused_operators["Attention"] == 6 and fp32.max_abs_diff < 1e-4


def test_onnx_embeddings_equal_torch_fp32_with_pooling_and_normalization(exported, encoder, rt_texts):
    expected = encoder.encode(rt_texts, backend="torch")
    onnx = OnnxEncoder(exported)
    got = onnx.encode(rt_texts)
    assert got.shape == (200, 384) and got.dtype == np.float32
    assert row_cosines(got, expected).min() >= 0.9999
    assert np.abs(got - expected).max() <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    raw = onnx.encode(rt_texts[:20], normalize=False)
    assert np.abs(raw - encoder.encode(rt_texts[:20], normalize=False, backend="torch")).max() <= 1e-4 * np.abs(raw).max()
    assert onnx.encode(rt_texts[0]).shape == (384,)
    assert onnx.encode([]).shape == (0, 384)


def test_exported_probabilities_equal_predict(exported, multitask, rt_texts):
    texts = rt_texts[:60]
    expected = multitask.predict_probabilities(texts, backend="torch")
    model = load_exported(exported)
    assert isinstance(model, OnnxModel)
    got = model.predict_probabilities(texts)
    for task in ("sentiment", "topic"):
        assert got[task].shape == expected[task].shape
        assert torch.abs(got[task] - expected[task].cpu()).max() <= 1e-4
    ours, theirs = model.predict(texts), multitask.predict(texts, backend="torch")
    assert [p["topic"].label for p in ours] == [p["topic"].label for p in theirs]
    assert model.predict(texts[:3], tasks=["topic"])[0].keys() == {"topic"}
    with pytest.raises(KeyError, match="unknown task"):
        model.predict(texts[:3], tasks=["nope"])


def test_int8_graph_carries_a_cost_that_reproduces(exported, sentiment):
    onnx = OnnxEncoder(exported)
    cost = onnx.quantization_cost
    assert cost is not None and cost.texts == 100
    reference = sentiment.validation.texts[:100]
    cosines = row_cosines(onnx.encode(reference, backend="onnx-int8"), onnx.encode(reference))
    assert cosines.min() == pytest.approx(cost.min_cosine, abs=1e-3)
    assert 0.9 < cost.min_cosine < 0.9999  # measurably lossy, still close
    assert set(cost.label_agreement) == set(cost.label_changes) == {"sentiment", "topic"}
    assert cost.label_changes["topic"] == pytest.approx(1.0 - cost.label_agreement["topic"])
    assert cost.method == "dynamic" and cost.loss >= 1.0 - cost.min_cosine
    assert "min cosine" in cost.summary()


def test_exported_dir_refuses_torch_backends(exported):
    with pytest.raises(ValueError, match="exported ONNX model"):
        OnnxEncoder(exported, backend="torch-bf16")
    with pytest.raises(ValueError, match="unknown backend"):
        OnnxEncoder(exported).encode(["x"], backend="fast")


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_plain_encoder_dirs_of_every_architecture_export(kind, tiny_model_dir, rt_texts, tmp_path):
    texts = rt_texts[:24]
    source = tiny_model_dir(kind)
    result = export_onnx(source, tmp_path / "onnx")
    assert result.manifest.tasks == [] and result.manifest.outputs == ["embedding"]
    expected = SentenceEncoder(source, device="cpu", backend="torch").encode(texts)
    got = OnnxEncoder(tmp_path / "onnx").encode(texts)
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
    with pytest.raises(ValueError, match="no int8 graph"):
        OnnxEncoder(tmp_path / "onnx", backend="onnx-int8")
    with pytest.raises(ValueError, match="without task heads"):
        OnnxModel(tmp_path / "onnx")
