"""The id a model is served under says which model it is."""

from __future__ import annotations

from polyhead.serve.served_model import model_name


def test_a_runs_model_is_served_under_the_runs_name(tmp_path):
    assert model_name(str(tmp_path / "topic_sentiment" / "model")) == "topic_sentiment"
    assert model_name(str(tmp_path / "rt-model")) == "rt-model"
    assert model_name(None) == "all-MiniLM-L6-v2"
