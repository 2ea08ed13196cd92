"""eval_mode: eval inside the block, and every submodule's own mode back afterwards."""

from __future__ import annotations

import pytest
from torch import nn

from polyhead import SentenceEncoder
from polyhead.modes import eval_mode


def test_frozen_parts_stay_in_eval_mode_after_the_block():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)))
    model.train()
    model[2].eval()  # a frozen part a training loop keeps in eval mode
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model[1].training
    assert not model[2].training and not model[2][1].training


def test_modes_come_back_when_the_block_raises():
    model = nn.Sequential(nn.Dropout(0.5)).train()
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training and model[0].training


def test_encode_inside_a_training_loop_keeps_a_frozen_backbone_in_eval_mode(tiny_model_dir):
    encoder = SentenceEncoder(tiny_model_dir("bert"), device="cpu")
    encoder.train()
    encoder.backbone.eval()
    encoder.encode(["a text"], backend="torch")
    assert encoder.training and not encoder.backbone.training
