"""SentenceEncoder: agreement with sentence-transformers, backbones, encode() edge cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from polyhead import SentenceEncoder, TruncationWarning
from tests.conftest import TINY_HIDDEN, TINY_KINDS, build_tiny_model

TOLERANCE = 1e-5


# --------------------------------------------------------------- sentence-transformers parity
def test_default_model_is_mean_pooled_and_normalized(encoder):
    assert encoder.pooling_mode == "mean"
    assert encoder.normalize is True
    assert encoder.embedding_dim == 384
    assert encoder.max_seq_length == 256
    assert encoder.device.type == "cpu"


def test_matches_sentence_transformers_on_real_texts(encoder, st_model, rt_texts):
    assert len(rt_texts) == 200
    ours = encoder.encode(rt_texts)
    theirs = st_model.encode(rt_texts, convert_to_numpy=True)
    assert ours.shape == theirs.shape == (200, 384)
    assert ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= TOLERANCE
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_polyhead_save_loads_in_sentence_transformers(encoder, rt_texts, tmp_path):
    from sentence_transformers import SentenceTransformer

    reference = encoder.encode(rt_texts)
    encoder.save(tmp_path / "saved")
    reloaded = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert reloaded.max_seq_length == encoder.max_seq_length
    assert np.abs(reloaded.encode(rt_texts, convert_to_numpy=True) - reference).max() <= TOLERANCE
    again = SentenceEncoder(tmp_path / "saved", device="cpu")
    assert (again.pooling_mode, again.normalize, again.max_seq_length) == ("mean", True, 256)
    assert np.abs(again.encode(rt_texts) - reference).max() <= TOLERANCE


def test_sentence_transformers_save_loads_in_polyhead(st_model, rt_texts, tmp_path):
    reference = st_model.encode(rt_texts, convert_to_numpy=True)
    st_model.save(str(tmp_path / "st"))
    loaded = SentenceEncoder(tmp_path / "st", device="cpu")
    assert (loaded.pooling_mode, loaded.normalize, loaded.max_seq_length) == ("mean", True, 256)
    assert np.abs(loaded.encode(rt_texts) - reference).max() <= TOLERANCE


# --------------------------------------------------------------- any backbone
@pytest.mark.parametrize("kind", TINY_KINDS)
@pytest.mark.parametrize("pooling", ["mean", "cls", "max", "cls_pooler"])
def test_tiny_backbones_load_and_encode(tiny_model_dir, varied_texts, kind, pooling):
    encoder = SentenceEncoder(tiny_model_dir(kind), pooling=pooling, device="cpu")
    assert encoder.pooling_mode == pooling
    assert encoder.normalize is False  # a plain HF directory has no Normalize module
    vectors = encoder.encode(varied_texts, batch_size=5)
    assert vectors.shape == (len(varied_texts), TINY_HIDDEN)
    assert np.isfinite(vectors).all()
    # Padding must not leak into any backbone's output (RoBERTa and MPNet derive
    # position ids from the padding id, BERT and DistilBERT do not).
    alone = np.stack([encoder.encode([text])[0] for text in varied_texts])
    assert np.abs(vectors - alone).max() <= TOLERANCE
    # Different texts give different vectors: the backbone really ran.
    assert np.abs(vectors[0] - vectors[-1]).max() > 1e-3


@pytest.mark.parametrize("kind", ["roberta", "mpnet"])
def test_default_max_seq_length_fits_offset_position_ids(tmp_path, kind):
    from transformers import AutoTokenizer

    directory = build_tiny_model(tmp_path / kind, kind, max_positions=66)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.model_max_length = 1_000_000_000_000  # a tokenizer that sets no limit of its own
    tokenizer.save_pretrained(directory)
    encoder = SentenceEncoder(directory, device="cpu")
    with pytest.warns(TruncationWarning):
        vector = encoder.encode("word " * 200)
    assert vector.shape == (TINY_HIDDEN,)


# --------------------------------------------------------------- encode() edge cases
@pytest.mark.parametrize("output", ["numpy", "torch"])
def test_no_texts_give_an_empty_matrix(encoder, output):
    result = encoder.encode([], output=output)
    assert tuple(result.shape) == (0, 384)
    if output == "torch":
        assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    else:
        assert isinstance(result, np.ndarray) and result.dtype == np.float32
    assert encoder.last_encode_stats.texts == 0


def test_torch_output_equals_numpy_output(encoder, rt_texts):
    as_numpy = encoder.encode(rt_texts[:8])
    as_torch = encoder.encode(rt_texts[:8], output="torch")
    assert isinstance(as_torch, torch.Tensor)
    np.testing.assert_array_equal(as_torch.cpu().numpy(), as_numpy)


@pytest.mark.parametrize(
    ("texts", "index", "type_name"),
    [(["fine", 3, "also fine"], 1, "int"), (["a", "b", None], 2, "NoneType"), ([b"bytes"], 0, "bytes")],
)
def test_a_non_string_item_raises_type_error_naming_its_index(encoder, texts, index, type_name):
    with pytest.raises(TypeError, match=rf"texts\[{index}\] is {type_name}"):
        encoder.encode(texts)


@pytest.mark.parametrize("not_a_list", [b"raw bytes", 42, None])
def test_texts_must_be_a_list_of_strings(encoder, not_a_list):
    with pytest.raises(TypeError, match="texts must be a list of strings"):
        encoder.encode(not_a_list)


def test_other_iterables_of_strings_are_accepted(encoder, rt_texts):
    expected = encoder.encode(rt_texts[:3])
    np.testing.assert_array_equal(encoder.encode(tuple(rt_texts[:3])), expected)
    np.testing.assert_array_equal(encoder.encode(t for t in rt_texts[:3]), expected)


def test_bad_arguments_are_rejected(encoder):
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["text"], batch_size=0)
    with pytest.raises(ValueError, match="output"):
        encoder.encode(["text"], output="list")


def test_a_single_string_gives_a_vector(encoder, rt_texts):
    vector = encoder.encode(rt_texts[0])
    assert vector.shape == (384,)
    assert np.abs(vector - encoder.encode([rt_texts[0]])[0]).max() <= TOLERANCE
    assert encoder.encode(rt_texts[0], output="torch").shape == (384,)


def test_output_order_is_input_order(encoder, varied_texts):
    # encode() sorts by length internally; the rows must come back in the caller's order.
    texts = varied_texts[::-1] + varied_texts[:3]
    together = encoder.encode(texts, batch_size=4)
    one_by_one = np.stack([encoder.encode([text])[0] for text in texts])
    assert np.abs(together - one_by_one).max() <= TOLERANCE
    assert np.abs(together[0] - together[1]).max() > 1e-2


def test_stats_count_texts_and_real_tokens(encoder, rt_texts):
    texts = rt_texts[:10]
    encoder.encode(texts)
    stats = encoder.last_encode_stats
    expected_tokens = sum(min(len(ids), encoder.max_seq_length) for ids in encoder.tokenizer(texts)["input_ids"])
    assert (stats.texts, stats.tokens, stats.truncated) == (10, expected_tokens, 0)


def test_normalize_argument_overrides_the_model_setting(encoder, rt_texts):
    texts = rt_texts[:6]
    normalized = encoder.encode(texts)
    raw = encoder.encode(texts, normalize=False)
    norms = np.linalg.norm(raw, axis=1)
    assert np.all(np.abs(norms - 1.0) > 1e-2), "normalize=False must return unnormalized vectors"
    assert np.abs(raw / norms[:, None] - normalized).max() <= TOLERANCE
    assert encoder.normalize is True  # the override is per call


def test_normalize_can_be_set_at_load_and_per_call(tiny_model_dir, rt_texts):
    plain = SentenceEncoder(tiny_model_dir("bert"), device="cpu")
    unit = SentenceEncoder(tiny_model_dir("bert"), normalize=True, device="cpu")
    texts = rt_texts[:4]
    np.testing.assert_allclose(np.linalg.norm(unit.encode(texts), axis=1), 1.0, atol=1e-5)
    assert np.all(np.abs(np.linalg.norm(plain.encode(texts), axis=1) - 1.0) > 1e-2)
    np.testing.assert_allclose(np.linalg.norm(plain.encode(texts, normalize=True), axis=1), 1.0, atol=1e-5)
    assert np.abs(unit.encode(texts, normalize=False) - plain.encode(texts)).max() <= TOLERANCE


def test_encode_restores_training_mode(tiny_model_dir):
    encoder = SentenceEncoder(tiny_model_dir("bert"), device="cpu")
    encoder.train()
    first = encoder.encode(["dropout must be off while encoding"] * 2)
    assert encoder.training is True
    assert np.abs(first[0] - first[1]).max() == 0.0


# --------------------------------------------------------------- truncation is never silent
@pytest.fixture(scope="module")
def short_encoder():
    return SentenceEncoder(max_seq_length=16, device="cpu")


def _token_count(encoder, text: str) -> int:
    return len(encoder.tokenizer(text)["input_ids"])


def test_truncation_warns_and_counts_exactly_the_cut_texts(short_encoder, sentiment):
    pool = sentiment.train.texts[:300]
    counts = {text: _token_count(short_encoder, text) for text in pool}
    at_limit = [t for t in pool if counts[t] == 16][:2]
    just_over = [t for t in pool if counts[t] == 17][:2]
    short = [t for t in pool if counts[t] < 16][:3]
    long = [t for t in pool if counts[t] > 40][:3]
    assert len(at_limit) == len(just_over) == 2 and len(short) == len(long) == 3
    texts = short + at_limit + long + just_over
    with pytest.warns(TruncationWarning, match=r"5 of 10 texts .* max_seq_length=16"):
        vectors = short_encoder.encode(texts)
    assert short_encoder.last_encode_stats.truncated == 5
    assert short_encoder.last_encode_stats.tokens == sum(min(counts[t], 16) for t in texts)
    assert vectors.shape == (10, 384) and np.isfinite(vectors).all()


def test_no_warning_when_nothing_is_cut(short_encoder, sentiment):
    texts = [t for t in sentiment.train.texts[:300] if _token_count(short_encoder, t) <= 16][:5]
    assert len(texts) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        short_encoder.encode(texts)
    assert short_encoder.last_encode_stats.truncated == 0


def test_a_truncated_text_is_encoded_as_its_first_tokens(short_encoder):
    long_text = "the film is a quiet triumph of patience and craft " * 6
    ids = short_encoder.tokenizer(long_text)["input_ids"]
    assert len(ids) > 16
    head = short_encoder.tokenizer.decode(ids[1:15])  # 14 word pieces + [CLS] + [SEP] = 16
    with pytest.warns(TruncationWarning):
        cut = short_encoder.encode(long_text)
    assert np.abs(cut - short_encoder.encode(head)).max() <= TOLERANCE


# --------------------------------------------------------------- save
def _tree(directory) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_failing_save_leaves_the_old_directory_intact(tiny_model_dir, tmp_path):
    """The save fails half-way (weights written, then the tokenizer's config cannot be serialized)."""
    target = tmp_path / "model"
    SentenceEncoder(tiny_model_dir("bert"), device="cpu").save(target)
    before = _tree(target)
    changed = SentenceEncoder(tiny_model_dir("bert"), pooling="cls", device="cpu")
    with torch.no_grad():
        changed.backbone.embeddings.word_embeddings.weight.add_(1.0)
    changed.tokenizer.init_kwargs["unserializable"] = object()  # json.dumps refuses it after the weights are out
    with pytest.raises(TypeError, match="not JSON serializable"):
        changed.save(target)
    assert _tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "no half-written sibling is left behind"
    assert SentenceEncoder(target, device="cpu").pooling_mode == "mean"
