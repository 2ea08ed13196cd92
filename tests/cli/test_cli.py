"""The `polyhead` command: encode, similarity, search, eval-similarity, errors, --help and a fast start.

Most commands run in-process through `polyhead.cli.main` (fast); a few run as a real
`python -m polyhead` subprocess to check what a shell sees: exit status and stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from polyhead import SentenceEncoder, TruncationWarning
from polyhead.cli import COMMAND_MODULES, EXIT_BAD_INPUT, build_parser, main
from tests.test_textio import write_texts

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def tiny_encoder(tiny_st_dir):
    return SentenceEncoder(tiny_st_dir, device="cpu")


@pytest.fixture(scope="module")
def texts(sentiment) -> list[str]:
    return sentiment.validation.texts[:23]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_embeddings(path: Path, texts: list[str]) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path)
    table = pq.read_table(path)
    assert table.column_names == ["text", "embedding"]
    assert table.column("text").to_pylist() == texts
    return np.array(table.column("embedding").to_pylist(), dtype=np.float32)


# --------------------------------------------------------------- encode
@pytest.mark.parametrize("out_suffix", [".npy", ".parquet"])
@pytest.mark.parametrize("in_suffix", [".txt", ".csv", ".jsonl", ".parquet"])
def test_encode_equals_the_library(capsys, tmp_path, tiny_st_dir, tiny_encoder, texts, in_suffix, out_suffix):
    source = write_texts(tmp_path / f"in{in_suffix}", texts)
    target = tmp_path / f"out{out_suffix}"
    code, out, err = run_cli(capsys, "encode", source, "-o", target, "--model", tiny_st_dir, "--batch-size", 4, "--no-progress")
    assert code == 0, err
    assert f"wrote {len(texts)} embeddings of dimension 32 to {target}" in err
    vectors = read_embeddings(target, texts)
    assert vectors.shape == (len(texts), 32)
    assert np.abs(vectors - tiny_encoder.encode(texts)).max() <= TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, target.name])


def test_encode_with_the_default_model(capsys, tmp_path, encoder, texts):
    source = write_texts(tmp_path / "in.txt", texts)
    code, _, err = run_cli(capsys, "encode", source, "-o", tmp_path / "out.npy", "--no-progress")
    assert code == 0, err
    assert np.abs(np.load(tmp_path / "out.npy") - encoder.encode(texts)).max() <= TOLERANCE


def test_encode_options_reach_the_encoder(capsys, tmp_path, tiny_st_dir, texts):
    source = write_texts(tmp_path / "in.csv", texts, column="review")
    target = tmp_path / "out.npy"
    # The command reports one truncation total (below), not a warning per chunk.
    code, _, err = run_cli(
        capsys, "encode", source, "-o", target, "--model", tiny_st_dir, "--text-column", "review",
        "--pooling", "max", "--no-normalize", "--max-seq-length", 12, "--no-progress",
    )
    assert code == 0, err
    assert "TruncationWarning" not in err
    reference = SentenceEncoder(tiny_st_dir, pooling="max", normalize=False, max_seq_length=12, device="cpu")
    with pytest.warns(TruncationWarning):
        expected = reference.encode(texts)
    truncated = reference.last_encode_stats.truncated
    assert truncated > 0 and f"{truncated} truncated at 12 tokens" in err
    assert np.abs(np.load(target) - expected).max() <= TOLERANCE


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str, int | None]]:
    """name -> (file, expected message part, expected line or None)."""
    cases: dict[str, tuple[Path, str, int | None]] = {}
    missing_column = tmp_path / "no_text.csv"
    missing_column.write_text("id,body\n1,hello\n", encoding="utf-8")
    cases["missing column"] = (missing_column, "field 'text': missing column", 1)
    bad_utf8 = tmp_path / "bad.txt"
    bad_utf8.write_bytes(b"one\ntwo\nth\xffree\nfour\n")
    cases["invalid utf-8"] = (bad_utf8, "not valid UTF-8", 3)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    cases["empty file"] = (empty, "file is empty", None)
    malformed = tmp_path / "broken.jsonl"
    malformed.write_text('{"text": "fine"}\n{"text": "fine"}\n{"text": oops}\n', encoding="utf-8")
    cases["malformed json"] = (malformed, "not valid JSON", 3)
    unsupported = tmp_path / "texts.docx"
    unsupported.write_text("hello\n")
    cases["unsupported suffix"] = (unsupported, "unsupported file type '.docx'", None)
    cases["nonexistent"] = (tmp_path / "missing.txt", "file not found", None)
    return cases


@pytest.mark.parametrize(
    "case", ["missing column", "invalid utf-8", "empty file", "malformed json", "unsupported suffix", "nonexistent"]
)
def test_bad_input_gives_one_located_error_line(capsys, tmp_path, tiny_st_dir, case):
    path, reason, line = _bad_inputs(tmp_path)[case]
    target = tmp_path / "out.npy"
    code, out, err = run_cli(capsys, "encode", path, "-o", target, "--model", tiny_st_dir, "--no-progress")
    assert code == EXIT_BAD_INPUT == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    where = f"{path}:{line}" if line is not None else str(path)
    assert lines[0].startswith(f"polyhead encode: error: {where}")
    assert reason in lines[0]
    assert out == ""
    assert not target.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_bad_input_in_search_names_the_corpus(capsys, tmp_path):
    path, reason, line = _bad_inputs(tmp_path)["invalid utf-8"]
    code, _, err = run_cli(capsys, "search", "query", "--corpus", path)
    assert code == 2 and err.strip() == f"polyhead search: error: {path}:{line}: {reason} (invalid start byte at byte 2)"


def test_unsupported_output_type(capsys, tmp_path, tiny_st_dir, texts):
    source = write_texts(tmp_path / "in.txt", texts)
    code, _, err = run_cli(capsys, "encode", source, "-o", tmp_path / "out.csv", "--model", tiny_st_dir)
    assert code == 2 and "unsupported output type '.csv'" in err and len(err.strip().splitlines()) == 1


def test_a_model_that_cannot_be_loaded_is_one_error_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "similarity", "a", "b", "--model", tmp_path / "no-such-model")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polyhead similarity: error:") and "no-such-model" in lines[0]


def _subprocess(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "polyhead", *map(str, args)], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )


def test_exit_status_and_stderr_in_a_real_process(tmp_path, tiny_st_dir):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"one\ntwo\nth\xffree\n")
    done = _subprocess("encode", bad, "-o", tmp_path / "out.npy", "--model", tiny_st_dir)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"polyhead encode: error: {bad}:3: not valid UTF-8 (invalid start byte"), lines
    assert not (tmp_path / "out.npy").exists()


# --------------------------------------------------------------- similarity, search, eval-similarity
def test_similarity_prints_a_matrix(capsys):
    sentences = ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."]
    code, out, _ = run_cli(capsys, "similarity", *sentences)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[:3] == [f"[{i}] {s}" for i, s in enumerate(sentences)]
    rows = [line.split() for line in lines if re.match(r"^\[\d\]\s+[-\d]", line)]
    assert [row[0] for row in rows] == ["[0]", "[1]", "[2]"]
    matrix = np.array([[float(x) for x in row[1:]] for row in rows])
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-4)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-4)
    assert matrix[0, 1] > matrix[0, 2] + 0.3


def test_search_prints_the_nearest_texts(capsys, tmp_path):
    corpus = [
        "The stock market fell sharply on Monday.",
        "A kitten is sleeping on the sofa.",
        "Heavy rain is expected over the weekend.",
        "Puppies and kittens play in the garden.",
        "The recipe needs two cups of flour.",
    ]
    path = write_texts(tmp_path / "corpus.txt", corpus)
    code, out, _ = run_cli(capsys, "search", "--corpus", path, "a cat naps on the couch", "-k", 2, "--no-progress")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "query: a cat naps on the couch"
    results = [line.split(None, 3) for line in lines[3:]]
    assert len(results) == 2
    assert [r[0] for r in results] == ["1", "2"]
    assert results[0][2:] == ["2", corpus[1]]  # rank, score, line, text
    assert results[1][3] == corpus[3]
    assert float(results[0][1]) > float(results[1][1])


def test_eval_similarity_json(capsys):
    code, out, _ = run_cli(capsys, "eval-similarity", "--json")
    assert code == 0
    scores = json.loads(out)
    assert scores["dataset"] == "lee" and scores["pairs"] == 1225
    assert 0.55 < scores["pearson"] < 0.75 and 0.40 < scores["spearman"] < 0.62


def test_eval_similarity_text_report(capsys, tiny_st_dir):
    code, out, _ = run_cli(capsys, "eval-similarity", "--model", tiny_st_dir, "--pooling", "cls")
    assert code == 0
    assert out.splitlines()[0] == f"lee (1225 pairs), model {tiny_st_dir}, pooling cls"
    assert re.fullmatch(r"pearson  -?\d\.\d{4}\nspearman -?\d\.\d{4}\n", "\n".join(out.splitlines()[1:]) + "\n")


# --------------------------------------------------------------- parser
def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_command_module_registers_a_subcommand():
    assert len(_subcommands()) >= len(COMMAND_MODULES)
    assert {"encode", "similarity", "search", "eval-similarity"} <= set(_subcommands())


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_help_works_on_every_subcommand(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: polyhead {command}")
    assert "--help" in out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in _subcommands())


def test_usage_errors_exit_with_status_2(capsys):
    for argv in ([], ["no-such-command"], ["encode", "in.txt"], ["search", "--corpus", "c.txt", "q", "-k", "two"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "usage: polyhead" in capsys.readouterr().err


def test_version(capsys):
    from polyhead import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"polyhead {__version__}"


HEAVY = ("torch", "transformers", "accelerate", "sklearn", "datasets")


def _light_run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter and fail if it imported a heavy library."""
    code = (
        "import sys\n"
        "from polyhead.cli import main\n"
        "try:\n    status = main(sys.argv[1:])\nexcept SystemExit as stop:\n    status = stop.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, f'imported {heavy}'\n"
        "sys.exit(status)\n"
    )
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_help_argument_and_config_errors_never_load_torch(tmp_path):
    (tmp_path / "typo.yaml").write_text("tasks:\n  a:\n    data:\n      train: t.csv\n      text_colum: body\n")
    (tmp_path / "nofile.yaml").write_text("tasks:\n  a:\n    data:\n      train: missing.csv\n")
    (tmp_path / "t.csv").write_text("text,label\na,x\nb,y\n")
    (tmp_path / "badfile.yaml").write_text("tasks:\n  a:\n    data:\n      train: t.csv\n      label_column: stars\n")
    (tmp_path / "hftypo.yaml").write_text("tasks:\n  a:\n    data:\n      hf: imdb\n      text_colum: review\n")
    (tmp_path / "hfsplit.yaml").write_text("tasks:\n  a:\n    data:\n      hf: imdb\n      splits: {train: train, dev: test}\n")
    (tmp_path / "fromnowhere.yaml").write_text("model:\n  from: runs/none/model\ntasks:\n  a: {data: jeopardy}\n")
    cases = [
        (["--help"], 0, "usage: polyhead"),
        (["train", "--help"], 0, "usage: polyhead train"),
        (["study", "--help"], 0, "usage: polyhead study"),
        (["serve", "--help"], 0, "usage: polyhead serve"),
        (["study", "typo.yaml"], 2, "typo.yaml:5, field 'tasks.a.data.text_colum'"),
        (["encode", "in.txt"], 2, "required: -o/--output"),
        (["train", "typo.yaml"], 2, "typo.yaml:5, field 'tasks.a.data.text_colum'"),
        (["train", "typo.yaml", "training.max_steps=abc"], 2, "typo.yaml:5"),
        (["train", "nofile.yaml"], 2, "missing.csv: file not found"),
        (["train", "fromnowhere.yaml"], 2, "field 'model.from'"),
        (["train", "badfile.yaml"], 2, "field 'stars': missing column"),
        (["train", "hftypo.yaml"], 2, "hftypo.yaml:5, field 'tasks.a.data.text_colum': unknown key (did you mean 'text_column'?)"),
        (["train", "hfsplit.yaml"], 2, "hfsplit.yaml:3, field 'tasks.a.data': splits: unknown split 'dev'"),
        (["encode", "missing.txt", "-o", "out.npy"], 2, "missing.txt: file not found"),
        (["predict", ".", "--input", "missing.txt"], 2, "missing.txt: file not found"),
        (["similarity", "a", "b", "--model", "./no/such/model"], 2, "./no/such/model: no such model directory"),
    ]
    for argv, status, message in cases:
        result = _light_run(argv, tmp_path)
        assert result.returncode == status, (argv, result.stderr)
        assert message in result.stdout + result.stderr, (argv, result.stderr)
