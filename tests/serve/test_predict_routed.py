"""/v1/predict_pairs and per-task adapters behind the server: the same answers as the library."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import torch

from .server_process import ServerProcess, serve_model_dir

TOLERANCE = 1e-5
PAIRS = [["A man plays a guitar on stage.", "Someone is making music."], ["The cat sleeps.", "The cat sleeps."],
         ["Stocks fell sharply today.", "A child builds a sandcastle."]]


@pytest.fixture(scope="module")
def routed_dir(tmp_path_factory):
    """The built-in encoder with a single-text task, two pair tasks and a task that runs through its own adapter."""
    from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec

    torch.manual_seed(11)
    model = MultiTaskModel(SentenceEncoder(device="cpu"), [
        TaskSpec("sentiment", ["fresh", "rotten"]), TaskSpec("subjectivity", ["plot", "review"]),
        TaskSpec("nli", ["contradiction", "entailment"], kind="pair_classification"),
        TaskSpec("sim", ["similarity"], kind="pair_regression"),
    ])
    model.add_task_adapter("subjectivity")
    with torch.no_grad():  # a trained adapter is not zero: make this one change what the task sees
        for name, parameter in model.encoder.backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    directory = tmp_path_factory.mktemp("routed") / "routed-model"
    model.save(directory)
    return directory


@pytest.fixture(scope="module")
def routed_server(routed_dir, tmp_path_factory) -> Iterator[ServerProcess]:
    yield from serve_model_dir(routed_dir, tmp_path_factory.mktemp("serve-routed"))


@pytest.fixture(scope="module")
def loaded(routed_dir):
    import polyhead

    return polyhead.load(routed_dir, device="cpu")


def test_pairs_are_answered_as_the_library_answers_them(routed_server, loaded):
    answer = httpx.post(routed_server.url + "/v1/predict_pairs", json={"input": PAIRS}, timeout=120)
    assert answer.status_code == 200, answer.text
    expected = loaded.predict_pairs([tuple(p) for p in PAIRS], backend="torch")
    for item, want in zip(answer.json()["data"], expected):
        assert set(item["predictions"]) == {"nli", "sim"}
        assert item["predictions"]["nli"]["label"] == want["nli"].label
        assert abs(item["predictions"]["sim"]["similarity"] - want["sim"].similarity) <= TOLERANCE
    assert answer.json()["data"][1]["predictions"]["sim"]["similarity"] == pytest.approx(1.0, abs=1e-5)


def test_a_task_with_its_own_adapter_is_routed_through_it(routed_server, loaded, encoder):
    texts = ["A gripping, beautifully shot film.", "The story follows a widow who returns to her village."]
    answer = httpx.post(routed_server.url + "/v1/predict", json={"input": texts}, timeout=120)
    assert answer.status_code == 200, answer.text
    expected = loaded.predict(texts, backend="torch")
    for item, want in zip(answer.json()["data"], expected):
        assert set(item["predictions"]) == {"sentiment", "subjectivity"}
        for task in ("sentiment", "subjectivity"):
            assert abs(item["predictions"][task]["probability"] - want[task].probability) <= TOLERANCE
    # The adapter changes what subjectivity sees; the shared encoder (and /v1/embeddings) stays the built-in one.
    with loaded.routed("subjectivity"):
        adapted = loaded.encoder.encode(texts, output="torch", backend="torch")
    plain = torch.from_numpy(encoder.encode(texts, show_progress=False, backend="torch"))
    assert not torch.allclose(adapted, plain, atol=1e-3)
    served = httpx.post(routed_server.url + "/v1/embeddings", json={"input": texts}, timeout=60).json()
    assert torch.allclose(torch.tensor([d["embedding"] for d in served["data"]]), plain, atol=TOLERANCE)


def test_each_route_names_the_other_for_its_tasks_and_a_pair_needs_two_texts(routed_server):
    wrong = httpx.post(routed_server.url + "/v1/predict", json={"input": ["x"], "tasks": ["sim"]}, timeout=60)
    assert wrong.status_code == 422 and "/v1/predict_pairs" in wrong.text
    wrong = httpx.post(routed_server.url + "/v1/predict_pairs", json={"input": PAIRS, "tasks": ["sentiment"]}, timeout=60)
    assert wrong.status_code == 422 and "/v1/predict" in wrong.text
    odd = httpx.post(routed_server.url + "/v1/predict_pairs", json={"input": [["only one"]]}, timeout=60)
    assert odd.status_code == 422 and "input[0] has 1 texts" in odd.text
