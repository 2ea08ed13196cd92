"""A model with a task of every kind gives the same answers saved and loaded, served over HTTP and exported to ONNX."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import torch

from ..serve.server_process import start_server

TEXTS = ["The storm destroyed our roof, we need tents.", "A quiet film about two brothers.", "Water and food please", "x"]
PAIRS = [("A man plays a guitar.", "Someone makes music."), ("A cat sleeps.", "A cat sleeps."), ("Rain all day.", "x")]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def kinds_model_dir(tiny_st_dir, tmp_path_factory):
    from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec

    torch.manual_seed(3)
    tasks = [
        TaskSpec("sentiment", ["fresh", "rotten"]),
        TaskSpec("value", ["value"], kind="regression", state={"mean": [640.0], "std": [560.0]}),
        TaskSpec("aid", ["food", "shelter", "water"], kind="multilabel", state={"thresholds": [0.3, 0.5, 0.7]}),
        TaskSpec("nli", ["contradiction", "entailment", "neutral"], kind="pair_classification"),
        TaskSpec("sim", ["similarity"], kind="pair_regression"),
    ]
    directory = tmp_path_factory.mktemp("kinds") / "model"
    MultiTaskModel(SentenceEncoder(tiny_st_dir, device="cpu"), tasks).save(directory)
    return directory


@pytest.fixture(scope="module")
def reference(kinds_model_dir):
    import polyhead

    model = polyhead.load(kinds_model_dir, device="cpu")
    return model, model.predict(TEXTS, backend="torch"), model.predict_outputs(TEXTS, backend="torch")


@pytest.fixture(scope="module")
def pair_reference(reference):
    return reference[0].predict_pairs(PAIRS, backend="torch")


def _same_answers(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert set(a) == set(b)
        for task in a:
            _close(a[task].to_dict(), b[task].to_dict())


def _close(a: dict, b: dict) -> None:
    """Two answers of one task: the same labels, numbers within TOLERANCE."""
    assert set(a) == set(b)
    for key, value in a.items():
        if isinstance(value, dict):
            _close(value, b[key])
        elif isinstance(value, float):
            assert abs(value - b[key]) <= TOLERANCE * max(1.0, abs(value)), key
        else:
            assert value == b[key], key


def test_each_kind_answers_in_its_own_terms(reference):
    model, predictions, outputs = reference
    first = predictions[0]
    assert first["sentiment"].label in ("fresh", "rotten")
    assert isinstance(first["value"].value, float) and set(first["value"].values) == {"value"}
    assert set(first["aid"].labels) <= {"food", "shelter", "water"}
    # regression outputs are in the target's units: the head's raw output times std plus mean
    with torch.inference_mode():
        embeddings = model.encoder.encode(TEXTS, output="torch", backend="torch")
        raw = model.heads["value"](embeddings)
    assert torch.allclose(outputs["value"], raw * 560.0 + 640.0, atol=1e-3)
    # multi-label answers apply each label's own threshold
    for row, prediction in zip(outputs["aid"].tolist(), predictions):
        assert prediction["aid"].labels == [name for name, p, t in zip(["food", "shelter", "water"], row, [0.3, 0.5, 0.7]) if p >= t]


def test_saved_state_survives_save_and_load(kinds_model_dir, reference, pair_reference, tmp_path):
    import polyhead

    model, predictions, _ = reference
    model.save(tmp_path / "again")
    again = polyhead.load(tmp_path / "again", device="cpu")
    assert again.tasks["aid"].state == {"thresholds": [0.3, 0.5, 0.7]} and again.tasks["value"].kind == "regression"
    _same_answers(again.predict(TEXTS, backend="torch"), predictions)
    _same_answers(again.predict_pairs(PAIRS, backend="torch"), pair_reference)


def test_the_server_answers_like_the_library(kinds_model_dir, reference, pair_reference, tmp_path):
    _, predictions, _ = reference
    server = start_server([str(kinds_model_dir), "--backend", "torch"], tmp_path / "server.log")
    try:
        answer = httpx.post(server.url + "/v1/predict", json={"input": TEXTS}, timeout=120)
        pair_answer = httpx.post(server.url + "/v1/predict_pairs", json={"input": [list(p) for p in PAIRS]}, timeout=120)
    finally:
        assert server.stop() == 0, server.log()
    for response, want_all in ((answer, predictions), (pair_answer, pair_reference)):
        assert response.status_code == 200, response.text
        for item, want in zip(response.json()["data"], want_all):
            assert set(item["predictions"]) == set(want)
            for task, prediction in want.items():
                got = {k: v for k, v in item["predictions"][task].items() if v is not None}
                _close(got, prediction.to_dict())


def test_the_exported_graph_holds_scaling_and_thresholds(kinds_model_dir, reference, tmp_path):
    from polyhead.inference import export_onnx, load_exported

    _, predictions, outputs = reference
    export_onnx(kinds_model_dir, tmp_path / "onnx")
    exported = load_exported(tmp_path / "onnx")
    assert exported.tasks["aid"].state["thresholds"] == [0.3, 0.5, 0.7]
    onnx_outputs = exported.predict_probabilities(TEXTS)
    for task in outputs:
        assert np.allclose(onnx_outputs[task].numpy(), outputs[task].numpy(), atol=1e-3, rtol=1e-4), task
    for a, b in zip(exported.predict(TEXTS), predictions):
        assert a["sentiment"].label == b["sentiment"].label and a["aid"].labels == b["aid"].labels
        assert a["value"].value == pytest.approx(b["value"].value, rel=1e-3, abs=0.5)


def test_the_exported_pair_graph_answers_pairs_like_the_library(kinds_model_dir, pair_reference, tmp_path):
    from polyhead.inference import export_onnx, load_exported

    manifest = export_onnx(kinds_model_dir, tmp_path / "onnx").manifest
    assert [t["name"] for t in manifest.pair_tasks] == ["nli", "sim"] and manifest.pair_graph.max_abs_diff < 1e-4
    exported = load_exported(tmp_path / "onnx")
    assert exported.pair_tasks == ["nli", "sim"] and "nli" not in exported.answering_tasks
    answers = exported.predict_pairs(PAIRS)
    _same_answers(answers, pair_reference)
    assert answers[1]["sim"].similarity == pytest.approx(1.0, abs=1e-5)  # a text and itself: cosine 1
    assert [a["nli"].label for a in exported.predict_pairs(PAIRS, tasks=["nli"])] == [a["nli"].label for a in pair_reference]
    with pytest.raises(KeyError, match="do not answer text pairs"):
        exported.predict_pairs(PAIRS, tasks=["sentiment"])


def test_predict_answers_pairs_from_arguments_and_files(kinds_model_dir, pair_reference, tmp_path, capsys):
    import json

    from polyhead.cli import main

    (tmp_path / "pairs.csv").write_text("first,second\n" + "".join(f"{a},{b}\n" for a, b in PAIRS))
    for arguments in ([*[t for pair in PAIRS for t in pair], "--pairs"],
                      ["--pairs", "--input", str(tmp_path / "pairs.csv"), "--text-column", "first", "--pair-column", "second"]):
        assert main(["predict", str(kinds_model_dir), *arguments, "--backend", "torch"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(r["text"], r["text_pair"]) for r in rows] == PAIRS
        for row, want in zip(rows, pair_reference):
            assert row["nli"]["label"] == want["nli"].label
            assert row["sim"]["similarity"] == pytest.approx(want["sim"].similarity, abs=1e-4)
    assert main(["predict", str(kinds_model_dir), "only one", "--pairs"]) == 2
    assert "two at a time" in capsys.readouterr().err
    assert main(["predict", str(kinds_model_dir), "a text", "--tasks", "nli"]) == 2
    assert "add --pairs" in capsys.readouterr().err


def test_pair_tasks_answer_pairs_of_texts(tiny_st_dir):
    from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec

    torch.manual_seed(5)
    model = MultiTaskModel(SentenceEncoder(tiny_st_dir, device="cpu"), [
        TaskSpec("nli", ["contradiction", "entailment"], kind="pair_classification"),
        TaskSpec("sim", ["similarity"], kind="pair_regression"),
        TaskSpec("sentiment", ["fresh", "rotten"]),
    ])
    pairs = [("A man plays a guitar.", "Someone makes music."), ("A cat sleeps.", "A cat sleeps.")]
    answers = model.predict_pairs(pairs, backend="torch")
    assert set(answers[0]) == {"nli", "sim"} and answers[0]["nli"].label in ("contradiction", "entailment")
    assert answers[1]["sim"].similarity == pytest.approx(1.0, abs=1e-5)  # a text and itself: cosine 1
    with pytest.raises(KeyError, match="do not answer text pairs"):
        model.predict_pairs(pairs, tasks=["sentiment"])
    assert set(model.predict(["A cat sleeps."], backend="torch")[0]) == {"sentiment"}


def test_evaluate_reads_a_pair_tasks_file_with_its_own_columns(kinds_model_dir, tmp_path, capsys):
    import json

    from scipy.stats import spearmanr

    from polyhead import load
    from polyhead.cli import main

    ratings = [0.6, 1.0, 0.1]
    (tmp_path / "sim.csv").write_text("first,second,rating\n" + "".join(f"{a},{b},{r}\n" for (a, b), r in zip(PAIRS, ratings)))
    output = tmp_path / "sim.json"
    assert main(["evaluate", str(kinds_model_dir), "--data", f"sim={tmp_path / 'sim.csv'}", "--text-column", "first",
                 "--pair-column", "second", "--label-column", "rating", "--backend", "torch", "-o", str(output)]) == 0, capsys.readouterr().err
    record = json.loads(output.read_text())
    assert record["data"]["sim"]["pair_column"] == "second" and record["tasks"]["sim"]["support"] == 3
    cosines = [a["sim"].similarity for a in load(kinds_model_dir, device="cpu").predict_pairs(PAIRS, backend="torch")]
    assert record["tasks"]["sim"]["spearman"] == pytest.approx(spearmanr(ratings, cosines)[0], abs=1e-6)
