"""Short-batch attention: the same numbers as transformers' eager attention, used by the bf16 twin."""

from __future__ import annotations

import pytest
import torch
from transformers.models.bert.modeling_bert import eager_attention_forward

from polyhead import SentenceEncoder
from polyhead.inference.attention import SHORT_ATTENTION, register_short_attention, short_attention
from polyhead.inference.bf16 import SHORT_ATTENTION_MAX_TOKENS, bf16_twin
from polyhead.similarity import row_cosines


def _padded_inputs(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Query/key/value for 3 texts x 2 heads x 7 tokens, the last text padded after 4 tokens."""
    torch.manual_seed(0)
    query, key, value = (torch.randn(3, 2, 7, 16, dtype=dtype) for _ in range(3))
    mask = torch.zeros(3, 1, 7, 7)
    mask[2, :, :, 4:] = torch.finfo(torch.float32).min
    return query, key, value, mask


def test_short_attention_equals_eager_attention_in_fp32():
    query, key, value, mask = _padded_inputs(torch.float32)
    module = torch.nn.Module().eval()
    expected, _ = eager_attention_forward(module, query, key, value, mask, scaling=0.25)
    got, weights = short_attention(module, query, key, value, mask, scaling=0.25)
    assert weights is None
    assert got.shape == expected.shape == (3, 7, 2, 16)
    assert torch.allclose(got, expected, atol=1e-6)


def test_short_attention_ignores_padded_keys_and_keeps_bf16():
    query, key, value, mask = _padded_inputs(torch.bfloat16)
    changed = value.clone()
    changed[2, :, 4:] = 100.0  # values at padded positions must not reach the output
    module = torch.nn.Module().eval()
    before, _ = short_attention(module, query, key, value, mask)
    after, _ = short_attention(module, query, key, changed, mask)
    assert before.dtype == torch.bfloat16
    assert torch.equal(before, after)


@pytest.mark.parametrize("kind", ["bert", "roberta", "distilbert", "mpnet"])
def test_bf16_twin_stays_close_to_fp32_on_short_batches_for_each_architecture(kind, tiny_model_dir, rt_texts):
    encoder = SentenceEncoder(tiny_model_dir(kind), device="cpu", normalize=True)
    texts = [text for text in rt_texts if len(text.split()) < 20][:24]
    assert max(len(ids) for ids in encoder.text_tokenizer.tokenize(texts).ids) <= SHORT_ATTENTION_MAX_TOKENS  # the short view runs
    fp32 = encoder.encode(texts, backend="torch")
    bf16 = encoder.encode(texts, backend="torch-bf16")
    assert row_cosines(bf16, fp32).min() >= 0.999


def test_twin_short_view_uses_the_registered_attention(tiny_model_dir):
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(tiny_model_dir("bert"))
    twin = bf16_twin(backbone, pack=False)
    assert twin.short.config._attn_implementation == register_short_attention() == SHORT_ATTENTION
    assert twin.long.config._attn_implementation != SHORT_ATTENTION
    assert backbone.config._attn_implementation != SHORT_ATTENTION  # the original model is untouched


def _eager(mask_function, attention_mask: torch.Tensor, length: int) -> torch.Tensor:
    from transformers.masking_utils import eager_mask

    return eager_mask(attention_mask.shape[0], length, length, mask_function=mask_function, attention_mask=attention_mask)


def test_key_padding_mask_matches_eager_mask_for_bidirectional_attention():
    from transformers.masking_utils import bidirectional_mask_function

    from polyhead.inference.attention import key_padding_mask

    attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]).bool()  # as transformers passes it
    got = key_padding_mask(3, 5, 5, mask_function=bidirectional_mask_function, attention_mask=attention_mask)
    assert got.shape == (3, 1, 1, 5)
    assert torch.equal(got.expand(3, 1, 5, 5), _eager(bidirectional_mask_function, attention_mask, 5))
    unpadded = torch.ones(2, 4, dtype=torch.bool)
    assert key_padding_mask(2, 4, 4, mask_function=bidirectional_mask_function, attention_mask=unpadded) is None


def test_key_padding_mask_leaves_other_patterns_to_eager():
    from transformers.masking_utils import causal_mask_function

    from polyhead.inference.attention import key_padding_mask

    attention_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]).bool()
    got = key_padding_mask(2, 4, 4, mask_function=causal_mask_function, attention_mask=attention_mask)
    assert torch.equal(got, _eager(causal_mask_function, attention_mask, 4))
