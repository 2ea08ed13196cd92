"""`polyhead encode --backend/--threads` and encoding with an exported directory."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.cli import main
from polyhead.inference import export_onnx, set_threads


@pytest.fixture(scope="module")
def lines(sentiment, tmp_path_factory):
    texts = [t for t in sentiment.test.texts[:40] if "\n" not in t]
    path = tmp_path_factory.mktemp("cli") / "texts.txt"
    path.write_text("\n".join(texts), encoding="utf-8")
    return path, texts


def test_encode_with_backend_and_threads(lines, tiny_st_dir, tmp_path, capsys):
    from polyhead import SentenceEncoder

    path, texts = lines
    try:
        code = main(["encode", str(path), "-o", str(tmp_path / "out.npy"), "--model", str(tiny_st_dir), "--backend", "torch", "--threads", "1", "--no-progress"])
    finally:
        set_threads(None)
    assert code == 0
    assert "(backend torch)" in capsys.readouterr().err
    expected = SentenceEncoder(tiny_st_dir, device="cpu").encode(texts, backend="torch")
    assert np.abs(np.load(tmp_path / "out.npy") - expected).max() <= 1e-5


def test_encode_with_an_exported_directory(lines, tiny_st_dir, tmp_path, capsys):
    from polyhead.inference import OnnxEncoder

    path, texts = lines
    export_onnx(tiny_st_dir, tmp_path / "onnx")
    assert main(["encode", str(path), "-o", str(tmp_path / "out.npy"), "--model", str(tmp_path / "onnx"), "--no-progress"]) == 0
    assert "(backend onnx)" in capsys.readouterr().err
    assert np.abs(np.load(tmp_path / "out.npy") - OnnxEncoder(tmp_path / "onnx").encode(texts)).max() <= 1e-6
    code = main(["encode", str(path), "-o", str(tmp_path / "x.npy"), "--model", str(tmp_path / "onnx"), "--backend", "torch"])
    assert code == 2
    assert "use backend 'onnx' or 'onnx-int8'" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def test_bad_backend_and_threads_are_refused(lines, tmp_path, capsys):
    path, _ = lines
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(path), "-o", str(tmp_path / "out.npy"), "--backend", "fastest"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fastest'" in capsys.readouterr().err
    assert main(["encode", str(path), "-o", str(tmp_path / "out.npy"), "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
