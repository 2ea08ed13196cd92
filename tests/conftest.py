"""Shared fixtures: the real default encoder, real Rotten Tomatoes texts, tiny random models.

Nothing here reaches a network: the hub is switched off before transformers is imported,
the default model comes from its installed package, and tiny models are built from configs.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# On a busy machine, OpenMP threads that spin while waiting make every small torch op
# cost milliseconds; passive waiting keeps the suite fast. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The suite's default is the exact fp32 path, which promises equality with sentence-transformers
# (<= 1e-5) and batch-independent vectors; tests of the automatic fast path (bf16 where the CPU
# has it, held to cosine >= 0.999) ask for backend="auto" explicitly. Subprocesses inherit it.
os.environ.setdefault("POLYHEAD_BACKEND", "torch")

import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

TINY_KINDS = ("bert", "distilbert", "roberta", "mpnet")
TINY_HIDDEN = 32


def _tiny_config(kind: str, max_positions: int):
    """A 2-layer, hidden-32 config of `kind` whose vocabulary is the default model's."""
    from transformers import BertConfig, DistilBertConfig, MPNetConfig, RobertaConfig

    common = dict(vocab_size=30522, max_position_embeddings=max_positions, pad_token_id=0)
    if kind == "distilbert":
        return DistilBertConfig(dim=TINY_HIDDEN, n_layers=2, n_heads=2, hidden_dim=64, **common)
    sizes = dict(hidden_size=TINY_HIDDEN, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    config_class = {"bert": BertConfig, "roberta": RobertaConfig, "mpnet": MPNetConfig}[kind]
    return config_class(**sizes, **common)


def build_tiny_model(directory: Path, kind: str, max_positions: int = 514, seed: int = 0) -> Path:
    """Save a randomly initialised `kind` backbone plus the default model's tokenizer to `directory`.

    The tokenizer is all-MiniLM-L6-v2's WordPiece (a BERT vocabulary); every tiny config
    uses that vocabulary and its padding id, so any of them tokenizes real text.
    """
    from transformers import AutoModel, AutoTokenizer

    from polyhead.assets import default_model_path

    torch.manual_seed(seed)
    model = AutoModel.from_config(_tiny_config(kind, max_positions))
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(str(default_model_path())).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session", autouse=True)
def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    from polyhead.assets import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def encoder():
    """The built-in all-MiniLM-L6-v2 on CPU, shared by the whole session: never modify it."""
    from polyhead import SentenceEncoder

    return SentenceEncoder(device="cpu")


@pytest.fixture(scope="session")
def st_model(default_model_dir):
    """sentence-transformers' own loading of the same default model."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(default_model_dir), device="cpu")


@pytest.fixture(scope="session")
def sentiment():
    """The real Rotten Tomatoes sentiment dataset (fresh / rotten)."""
    from polyhead.datasets import rotten_tomatoes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rotten_tomatoes("sentiment")


@pytest.fixture(scope="session")
def rt_texts(sentiment) -> list[str]:
    """200 real review snippets from the training split."""
    return sentiment.train.texts[:200]


@pytest.fixture(scope="session")
def varied_texts(sentiment, encoder) -> list[str]:
    """Real texts of very different token lengths (shortest, middle, longest of 2,000)."""
    pool = sentiment.train.texts[:2000]
    lengths = [len(ids) for ids in encoder.tokenizer(pool)["input_ids"]]
    order = sorted(range(len(pool)), key=lambda i: (lengths[i], i))
    picks = order[:4] + order[len(order) // 2 : len(order) // 2 + 4] + order[-4:]
    return [pool[i] for i in picks]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Callable[[str], Path]:
    """tiny_model_dir(kind) -> a saved tiny random HF backbone of that kind (built once)."""
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = build_tiny_model(tmp_path_factory.mktemp(f"tiny-{kind}"), kind)
        return built[kind]

    return get


@pytest.fixture(scope="session")
def tiny_st_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny BERT saved by polyhead as a sentence-transformers directory (mean, normalized)."""
    from polyhead import SentenceEncoder

    directory = tmp_path_factory.mktemp("tiny-st") / "model"
    SentenceEncoder(tiny_model_dir("bert"), normalize=True, device="cpu").save(directory)
    return directory


@pytest.fixture
def force_bf16(monkeypatch) -> None:
    """Make `auto` take the bf16 path on any CPU, as it does on one with AVX-512 BF16 or AMX.

    Without it, a CPU lacking bf16 hardware resolves `auto` to fp32 and a test of the fast
    path would compare fp32 with fp32. bf16 autocast still runs here (emulated, only slower),
    so the numbers checked are the bf16 path's own. Use it on encoders whose automatic choice
    is not cached yet (a fresh or deep-copied encoder, never the shared `encoder`).
    """
    import polyhead.inference.backends as backends

    monkeypatch.setattr(backends, "bf16_available", lambda device_type: True)


def native_bf16_cpu() -> bool:
    """Whether /proc/cpuinfo lists AVX-512 BF16 or AMX, read here rather than asked of polyhead."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))
