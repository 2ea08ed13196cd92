"""Pooling modes: masking, batch independence, cls_pooler initialisation, save round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polyhead import SentenceEncoder
from polyhead.pooling import POOLING_MODES, Pooling, cls_pool, max_pool, mean_pool

TOLERANCE = 1e-5


def _padded_batch(seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Three texts of 5, 2 and 4 tokens padded to 5; padding rows hold extreme values."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(3, 5, 8, generator=generator).to(dtype)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]])
    tokens[1, 2:] = 1e4
    tokens[2, 4:] = -1e4
    return tokens, mask


# --------------------------------------------------------------- the pooling functions
def test_mean_pool_averages_only_real_tokens():
    tokens, mask = _padded_batch()
    pooled = mean_pool(tokens, mask)
    for row, length in enumerate([5, 2, 4]):
        torch.testing.assert_close(pooled[row], tokens[row, :length].mean(dim=0))


def test_max_pool_takes_the_maximum_of_real_tokens_only():
    tokens, mask = _padded_batch()
    tokens[1, :2] = -torch.rand(2, 8) - 5.0  # all-negative real tokens: padding must still lose
    pooled = max_pool(tokens, mask)
    for row, length in enumerate([5, 2, 4]):
        torch.testing.assert_close(pooled[row], tokens[row, :length].max(dim=0).values)
    assert (pooled[1] < -4.0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_max_pool_never_modifies_the_backbone_output(dtype):
    tokens, mask = _padded_batch(dtype=dtype)
    before = tokens.clone()
    pooled = max_pool(tokens, mask)
    assert torch.equal(tokens, before)
    assert pooled.dtype == dtype
    assert torch.isfinite(pooled).all()


def test_cls_pool_takes_the_first_token():
    tokens, mask = _padded_batch()
    assert torch.equal(cls_pool(tokens, mask), tokens[:, 0])


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="unknown pooling mode 'sum'.*mean, cls, max, cls_pooler"):
        Pooling(8, "sum")  # type: ignore[arg-type]


def test_only_cls_pooler_has_weights():
    for mode in POOLING_MODES:
        params = list(Pooling(8, mode).parameters())  # type: ignore[arg-type]
        assert (len(params) == 2) == (mode == "cls_pooler")


def test_cls_pooler_is_tanh_of_a_dense_layer_on_cls():
    tokens, mask = _padded_batch()
    pooling = Pooling(8, "cls_pooler")
    assert pooling.dense is not None
    expected = torch.tanh(tokens[:, 0] @ pooling.dense.weight.T + pooling.dense.bias)
    torch.testing.assert_close(pooling(tokens, mask), expected)


# --------------------------------------------------------------- cls_pooler initialisation
def test_cls_pooler_starts_from_the_bert_pooler(tiny_model_dir):
    encoder = SentenceEncoder(tiny_model_dir("bert"), pooling="cls_pooler", device="cpu")
    source, dense = encoder.backbone.pooler.dense, encoder.pooling.dense
    assert torch.equal(dense.weight, source.weight) and torch.equal(dense.bias, source.bias)
    # A copy, not a shared tensor: training cls_pooler leaves the frozen backbone pooler alone.
    assert dense.weight.data_ptr() != source.weight.data_ptr()
    assert dense.weight.requires_grad and not source.weight.requires_grad
    with torch.no_grad():
        dense.weight.add_(1.0)
    assert not torch.equal(dense.weight, source.weight)


def test_cls_pooler_of_the_default_model_uses_its_pooler_weights(encoder):
    pooling = Pooling(encoder.hidden_size, "cls_pooler")
    assert pooling.init_dense_from(encoder.backbone) is True
    assert torch.equal(pooling.dense.weight, encoder.backbone.pooler.dense.weight)


def test_cls_pooler_is_fresh_without_a_backbone_pooler(tiny_model_dir):
    encoder = SentenceEncoder(tiny_model_dir("distilbert"), pooling="cls_pooler", device="cpu")
    assert getattr(encoder.backbone, "pooler", None) is None
    assert Pooling(encoder.hidden_size, "cls_pooler").init_dense_from(encoder.backbone) is False
    weight = encoder.pooling.dense.weight
    assert weight.shape == (32, 32) and weight.requires_grad
    # nn.Linear's default initialisation: nonzero, bounded by 1/sqrt(fan_in).
    assert weight.abs().max() <= 32**-0.5 and weight.std() > 0.05


# --------------------------------------------------------------- batch independence (real model)
@pytest.fixture(scope="module", params=POOLING_MODES)
def pooled_encoder(request, encoder):
    if request.param == "mean":
        return encoder
    return SentenceEncoder(pooling=request.param, device="cpu")


def test_embeddings_do_not_depend_on_batch_or_padding(pooled_encoder, varied_texts, rt_texts):
    lengths = [len(ids) for ids in pooled_encoder.tokenizer(varied_texts)["input_ids"]]
    assert max(lengths) >= 5 * min(lengths), "the texts must differ enough in length to pad"
    alone = np.stack([pooled_encoder.encode([text])[0] for text in varied_texts])
    for batch_size in (len(varied_texts), 5, 2):
        together = pooled_encoder.encode(varied_texts, batch_size=batch_size)
        assert np.abs(together - alone).max() <= TOLERANCE, f"batch_size={batch_size}"
    # The same texts among other company, in another order.
    mixed = rt_texts[:10] + varied_texts[::-1]
    vectors = pooled_encoder.encode(mixed, batch_size=8)[10:][::-1]
    assert np.abs(vectors - alone).max() <= TOLERANCE


def test_real_model_in_every_mode_matches_sentence_transformers(pooled_encoder, encoder, varied_texts, tmp_path):
    from sentence_transformers import SentenceTransformer

    reference = pooled_encoder.encode(varied_texts)
    if pooled_encoder is not encoder:
        assert np.abs(reference - encoder.encode(varied_texts)).max() > 1e-2, "the mode must matter"
    pooled_encoder.save(tmp_path / "model")
    st = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    assert np.abs(st.encode(varied_texts, convert_to_numpy=True) - reference).max() <= TOLERANCE


# --------------------------------------------------------------- save -> sentence-transformers
@pytest.mark.parametrize("kind", ["bert", "distilbert"])
@pytest.mark.parametrize("mode", POOLING_MODES)
def test_every_mode_round_trips_through_sentence_transformers(tiny_model_dir, varied_texts, tmp_path, kind, mode):
    from sentence_transformers import SentenceTransformer

    normalize = mode in ("mean", "cls_pooler")  # both with and without a Normalize module
    encoder = SentenceEncoder(tiny_model_dir(kind), pooling=mode, normalize=normalize, device="cpu")
    if encoder.pooling.dense is not None:
        with torch.no_grad():  # as after training: weights that exist nowhere else
            encoder.pooling.dense.weight.mul_(1.5)
    reference = encoder.encode(varied_texts)
    encoder.save(tmp_path / "polyhead")

    st = SentenceTransformer(str(tmp_path / "polyhead"), device="cpu")
    assert np.abs(st.encode(varied_texts, convert_to_numpy=True) - reference).max() <= TOLERANCE

    st.save(str(tmp_path / "st"))
    for directory in (tmp_path / "polyhead", tmp_path / "st"):
        reloaded = SentenceEncoder(directory, device="cpu")
        assert (reloaded.pooling_mode, reloaded.normalize) == (mode, normalize)
        assert np.abs(reloaded.encode(varied_texts) - reference).max() <= TOLERANCE
