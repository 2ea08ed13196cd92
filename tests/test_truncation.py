"""What a long text keeps (head, tail, head+tail) and the length summary behind the truncation report."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.tokenization import TextTokenizer
from polyhead.truncation import cut_ids, format_length_table, length_notes, length_report, summarize_lengths

CLS, SEP = 101, 102


def test_cut_keeps_special_tokens_and_the_chosen_side():
    ids = [CLS, *range(1, 21), SEP]
    mask = [1] + [0] * 20 + [1]
    assert cut_ids(ids, mask, 10, "head") == [CLS, 1, 2, 3, 4, 5, 6, 7, 8, SEP]
    assert cut_ids(ids, mask, 10, "tail") == [CLS, 13, 14, 15, 16, 17, 18, 19, 20, SEP]
    assert cut_ids(ids, mask, 10, "head+tail") == [CLS, 1, 2, 15, 16, 17, 18, 19, 20, SEP]
    assert cut_ids(ids[:5], mask[:4] + [1], 10, "tail") == ids[:5]


@pytest.mark.parametrize("side", ["head", "tail", "head+tail"])
def test_tokenizer_cuts_long_texts_on_the_chosen_side(encoder, side):
    text = "first words of the review " + "filler " * 60 + "the verdict at its end"
    tokenizer = TextTokenizer(encoder.tokenizer, 16, truncation=side)
    tokenized = tokenizer.tokenize([text, "short"])
    assert tokenized.truncated == 1 and len(tokenized.ids[0]) == 16
    words = encoder.tokenizer.decode(tokenized.ids[0], skip_special_tokens=True)
    assert words.startswith("first words") == (side != "tail")
    assert words.endswith("at its end") == (side != "head")
    assert int(tokenizer.token_lengths([text])[0]) > 60


def test_length_summary_and_note():
    report = length_report({"mail": {"train": ["x"] * 10}}, lambda texts: np.array([50] * 8 + [300, 400]), 128)
    summary = report["mail"]["train"]
    assert (summary["truncated"], summary["p50"], summary["longest"]) == (2, 50, 400)
    assert "20% of mail's train texts are cut at 128 tokens" in length_notes(report, "head", 512)[0]
    assert "mail  train" in format_length_table(report)
    assert summarize_lengths([10, 20], 128).over == 0 and not length_notes(length_report({"a": {"t": ["x"]}}, lambda t: [5], 128), "head", None)
