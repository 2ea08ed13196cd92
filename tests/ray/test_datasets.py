"""`polyhead.ray.embed` / `predict` on Ray Datasets: columns kept, same vectors as `encode`, invalid texts never dropped."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.ray import ModelSpec, count_invalid, embed, predict


def _rows(texts: list) -> list[dict]:
    return [{"id": i, "text": t, "source": f"s{i % 3}"} for i, t in enumerate(texts)]


def test_embed_keeps_every_column_and_equals_encode_per_batch(ray_local, tiny_st_dir, rt_texts):
    from polyhead import SentenceEncoder

    texts = rt_texts[:40]
    dataset = ray_local.data.from_items(_rows(texts), override_num_blocks=2)
    rows = sorted(embed(dataset, tiny_st_dir, batch_rows=10, backend="torch").take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(40))
    assert [r["text"] for r in rows] == texts and [r["source"] for r in rows] == [f"s{i % 3}" for i in range(40)]
    got = np.stack([np.asarray(r["embedding"], dtype=np.float32) for r in rows])
    encoder = SentenceEncoder(tiny_st_dir, device="cpu")
    # Each worker batch is encoded as `encode` encodes that list: same 10-row batches, same bits.
    want = np.concatenate([encoder.encode(texts[i : i + 10], backend="torch") for i in range(0, 40, 10)])
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_invalid_texts_name_their_row_or_stay_as_null(ray_local, tiny_st_dir, rt_texts):
    import pyarrow as pa

    from polyhead.ray import Embedder, InvalidTextError

    texts = [*rt_texts[:6], "", None, "   ", *rt_texts[6:8]]
    # The worker's own class, called here as Ray calls it: the error names the row by its id.
    with pytest.raises(InvalidTextError, match=r"row id=6: text is empty \(2 more invalid"):
        Embedder(ModelSpec(str(tiny_st_dir)), id_column="id")(pa.Table.from_pylist(_rows(texts)))

    dataset = ray_local.data.from_items(_rows(texts), override_num_blocks=1)
    kept = embed(dataset, tiny_st_dir, on_invalid="null", batch_rows=64).materialize()
    rows = sorted(kept.take_all(), key=lambda r: r["id"])
    assert len(rows) == len(texts)  # nothing dropped
    assert [r["id"] for r in rows if r["embedding"] is None] == [6, 7, 8]
    assert count_invalid(kept) == 3


def test_predict_adds_one_answer_column_per_task(ray_local, tiny_task_model, rt_texts):
    from polyhead import load

    texts = rt_texts[:24]
    dataset = ray_local.data.from_items(_rows(texts))
    rows = sorted(predict(dataset, ModelSpec(str(tiny_task_model), backend="torch"), batch_rows=8).take_all(), key=lambda r: r["id"])
    want = load(tiny_task_model, device="cpu").predict(texts)
    assert [r["sentiment"]["label"] for r in rows] == [p["sentiment"].label for p in want]
    assert [r["topic"]["label"] for r in rows] == [p["topic"].label for p in want]
    assert rows[0]["topic"]["probability"] == pytest.approx(want[0]["topic"].probability, abs=1e-6)
    assert rows[0]["source"] == "s0"


def test_without_ray_the_error_is_one_install_line(monkeypatch):
    import builtins

    from polyhead.ray.require import RayMissingError, require_ray

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(RayMissingError) as caught:
        require_ray("polyhead.ray.embed")
    assert str(caught.value) == "polyhead.ray.embed needs Ray, which is not installed. Fix: pip install 'polyhead[ray]'"
