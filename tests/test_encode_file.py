"""Streaming a file through the encoder: several chunks, the same vectors as in memory, no half files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from polyhead import SentenceEncoder
from polyhead.encode_file import encode_file, estimate_rows
from polyhead.errors import InputError
from polyhead.similarity import row_cosines


@pytest.fixture(scope="module")
def texts(sentiment) -> list[str]:
    """60 real reviews without line breaks (so one per .txt line)."""
    return [t for t in sentiment.train.texts[:80] if "\n" not in t][:60]


@pytest.fixture(scope="module")
def expected(encoder, texts) -> np.ndarray:
    return encoder.encode(texts, backend="torch")


def test_npy_streams_in_chunks_and_equals_in_memory_encode(encoder, texts, expected, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    result = encode_file(encoder, source, tmp_path / "out.npy", chunk_size=7, batch_size=4, show_progress=False, backend="torch")
    assert (result.rows, result.dim) == (60, 384)
    assert result.tokens == sum(len(x) for x in encoder.text_tokenizer.tokenize(texts).ids)
    written = np.load(tmp_path / "out.npy")
    assert written.shape == (60, 384) and written.dtype == np.float32
    assert np.abs(written - expected).max() <= 1e-5
    assert estimate_rows(source) == 60


def test_parquet_has_one_row_group_per_chunk_and_the_texts(encoder, texts, expected, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"review": t}) + "\n" for t in texts), encoding="utf-8")
    encode_file(encoder, source, tmp_path / "out.parquet", text_column="review", chunk_size=16, show_progress=False, backend="torch")
    parquet = pq.ParquetFile(tmp_path / "out.parquet")
    assert parquet.metadata.num_row_groups == 4 and parquet.metadata.num_rows == 60
    table = parquet.read()
    assert table.column("review").to_pylist() == texts
    vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    assert np.abs(vectors - expected).max() <= 1e-5


def test_auto_backend_streams_too(tiny_model_dir, texts, tmp_path, force_bf16):
    """`auto` (bf16, forced so that a CPU without bf16 hardware runs it too) streams within cosine 0.999."""
    tiny = SentenceEncoder(tiny_model_dir("bert"), device="cpu", normalize=True)
    exact = tiny.encode(texts, backend="torch")
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts), encoding="utf-8")
    encode_file(tiny, source, tmp_path / "out.npy", chunk_size=25, show_progress=False, backend="auto")
    assert tiny.last_encode_stats.backend == "torch-bf16"
    written = np.load(tmp_path / "out.npy")
    assert written.shape == exact.shape
    assert row_cosines(written, exact).min() >= 0.999
    assert np.abs(written - exact).max() > 1e-6, "the bf16 path ran, so the vectors are not fp32's"


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_a_failure_mid_stream_leaves_no_half_file(encoder, texts, tmp_path, suffix):
    source = tmp_path / "in.txt"
    good = "\n".join(texts[:30]).encode("utf-8")
    source.write_bytes(good + b"\n\xff broken line\n" + "\n".join(texts[30:]).encode("utf-8"))
    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"previous good output")
    with pytest.raises(InputError, match=r"in\.txt:31: not valid UTF-8"):
        encode_file(encoder, source, target, chunk_size=10, show_progress=False, backend="torch")
    assert target.read_bytes() == b"previous good output"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.txt", target.name])


def test_bad_chunk_size_is_refused(encoder, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(ValueError, match="chunk_size"):
        encode_file(encoder, source, tmp_path / "out.npy", chunk_size=0, show_progress=False)


def test_read_ahead_keeps_order_and_raises_a_readers_error_at_its_chunk():
    from polyhead.encode_file import read_ahead

    def chunks():
        yield ["a"]
        yield ["b", "c"]
        raise ValueError("line 4 is bad")

    seen = []
    with pytest.raises(ValueError, match="line 4"):
        for chunk in read_ahead(chunks()):
            seen.append(chunk)
    assert seen == [["a"], ["b", "c"]]


def test_read_ahead_closes_its_source_when_the_caller_stops_early():
    from polyhead.encode_file import read_ahead

    closed = []

    def source():
        try:
            for i in range(10):
                yield [f"text {i}"]
        finally:
            closed.append(True)

    chunks = read_ahead(source())
    assert next(chunks) == ["text 0"]
    chunks.close()  # an encode error mid-file ends the loop this way
    assert closed == [True]
