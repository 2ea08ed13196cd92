"""The attention-backend choice: cuDNN out by default, the override read and checked."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend

from polyhead.sdpa import attention_backends, backend_order
from polyhead.tokenization import TextTokenizer, padded_width


def test_default_order_leaves_cudnn_out(monkeypatch):
    monkeypatch.delenv("POLYHEAD_SDPA", raising=False)
    order = backend_order()
    assert SDPBackend.CUDNN_ATTENTION not in order
    assert order[-1] == SDPBackend.MATH  # the fallback that runs everywhere stays last


def test_override_from_environment(monkeypatch):
    monkeypatch.setenv("POLYHEAD_SDPA", "math, cudnn")
    assert backend_order() == [SDPBackend.MATH, SDPBackend.CUDNN_ATTENTION]
    monkeypatch.setenv("POLYHEAD_SDPA", "fast")
    with pytest.raises(ValueError, match="POLYHEAD_SDPA.*'fast'"):
        backend_order()


def test_attention_unchanged_under_the_chosen_backends():
    q, k, v = (torch.randn(2, 4, 9, 16) for _ in range(3))
    mask = torch.ones(2, 1, 1, 9, dtype=torch.bool)
    mask[1, ..., 6:] = False
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with attention_backends():
        assert torch.allclose(F.scaled_dot_product_attention(q, k, v, attn_mask=mask), reference, atol=1e-6)


@pytest.mark.parametrize("longest,multiple,limit,width", [
    (17, 1, None, 17), (17, 16, None, 32), (16, 16, 256, 16), (250, 16, 256, 256), (97, 16, 100, 100), (120, 16, 100, 120),
])
def test_padded_width_buckets(longest, multiple, limit, width):
    assert padded_width(longest, multiple, limit) == width


def test_pad_to_a_bucket_keeps_the_mask_exact():
    from tokenizers import Tokenizer, models

    tokenizer = TextTokenizer(Tokenizer(models.WordLevel({"[PAD]": 0, "a": 1}, unk_token="[PAD]")), max_seq_length=64, pad_id=0)
    import numpy as np

    batch = tokenizer.pad([np.arange(1, 4), np.arange(1, 19)], multiple=16)
    assert batch["input_ids"].shape == (2, 32)
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 18]
    assert batch["input_ids"][0, 3:].eq(0).all()
