"""Imported once by the fork server of test_checkpoint_faults: what every forked run would redo.

Imports (torch, transformers' BERT, accelerate) and the one-off work of a first model load
and a first dataset read are done here, before the fork, so each killed run costs its own
training steps. Nothing here changes what a run computes.
"""

from __future__ import annotations

import tempfile

import accelerate  # noqa: F401
import polyhead.training.loop  # noqa: F401
from polyhead.datasets import builtin
from transformers import AutoModel, BertConfig

builtin._rotten_tomatoes_rows()
with tempfile.TemporaryDirectory() as _directory:
    AutoModel.from_config(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8, vocab_size=16)).save_pretrained(_directory)
    AutoModel.from_pretrained(_directory)
