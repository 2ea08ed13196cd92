"""/v1/predict on a MultiTaskModel directory equals `MultiTaskModel.predict`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import torch

from .server_process import ServerProcess, serve_model_dir

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def multitask_dir(tmp_path_factory, encoder):
    from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec

    torch.manual_seed(7)
    directory = tmp_path_factory.mktemp("multitask") / "rt-model"
    tasks = [TaskSpec("sentiment", ["fresh", "rotten"]), TaskSpec("subjectivity", ["plot", "review"])]
    MultiTaskModel(SentenceEncoder(device="cpu"), tasks).save(directory)
    return directory


@pytest.fixture(scope="module")
def multitask_server(multitask_dir, tmp_path_factory) -> Iterator[ServerProcess]:
    yield from serve_model_dir(multitask_dir, tmp_path_factory.mktemp("serve-mt"))


@pytest.fixture(scope="module")
def loaded(multitask_dir):
    import polyhead

    return polyhead.load(multitask_dir, device="cpu")


def _assert_same(got: dict, prediction) -> None:
    """A served prediction equals the library's TaskPrediction."""
    assert got["label"] == prediction.label
    assert abs(got["probability"] - prediction.probability) <= TOLERANCE
    assert set(got["probabilities"]) == set(prediction.probabilities)
    for label, value in prediction.probabilities.items():
        assert abs(got["probabilities"][label] - value) <= TOLERANCE


def test_predict_equals_library(multitask_server, loaded, rt_texts):
    texts = rt_texts[:12]
    answer = httpx.post(multitask_server.url + "/v1/predict", json={"input": texts}, timeout=120)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "list" and body["model"] == "rt-model"
    assert body["usage"]["prompt_tokens"] > len(texts)
    expected = loaded.predict(texts, backend="torch")
    assert [item["index"] for item in body["data"]] == list(range(len(texts)))
    for item, want in zip(body["data"], expected):
        assert set(item["predictions"]) == {"sentiment", "subjectivity"}
        for task, prediction in want.items():
            _assert_same(item["predictions"][task], prediction)


def test_predict_one_task_and_single_string(multitask_server, loaded):
    text = "A tedious, overlong mess."
    answer = httpx.post(multitask_server.url + "/v1/predict", json={"input": text, "tasks": ["sentiment"]}, timeout=60)
    assert answer.status_code == 200, answer.text
    (item,) = answer.json()["data"]
    assert list(item["predictions"]) == ["sentiment"]
    _assert_same(item["predictions"]["sentiment"], loaded.predict([text], tasks=["sentiment"], backend="torch")[0]["sentiment"])


def test_unknown_task_is_422(multitask_server):
    answer = httpx.post(multitask_server.url + "/v1/predict", json={"input": "x", "tasks": ["topic"]}, timeout=60)
    assert answer.status_code == 422
    assert "unknown task(s) ['topic']" in answer.json()["error"]["message"]


def test_models_lists_tasks_and_labels(multitask_server, encoder):
    (card,) = httpx.get(multitask_server.url + "/v1/models").json()["data"]
    assert card["id"] == "rt-model"
    assert card["tasks"] == [{"name": "sentiment", "labels": ["fresh", "rotten"]}, {"name": "subjectivity", "labels": ["plot", "review"]}]
    assert card["embedding_dim"] == encoder.embedding_dim


def test_embeddings_work_on_a_multitask_model(multitask_server, encoder):
    answer = httpx.post(multitask_server.url + "/v1/embeddings", json={"input": ["same encoder"]}, timeout=60)
    vector = torch.tensor(answer.json()["data"][0]["embedding"])
    assert torch.allclose(vector, torch.from_numpy(encoder.encode(["same encoder"], show_progress=False, backend="torch")[0]), atol=TOLERANCE)
