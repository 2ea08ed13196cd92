"""`--engine ray` arguments that cannot work are one line and exit status 2, before any cluster starts."""

from __future__ import annotations

from polyhead.cli import EXIT_BAD_INPUT, main


def _one_error_line(capsys, *args) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and len(err) == 1, err
    return err[0]


def test_ray_only_options_without_the_ray_engine(capsys, tmp_path):
    (tmp_path / "a.txt").write_text("hello\n")
    line = _one_error_line(capsys, "encode", tmp_path / "a.txt", "-o", tmp_path / "a.npy", "--resume", "--workers", "2")
    assert "--resume, --workers: only with --engine ray" in line
    line = _one_error_line(capsys, "encode", tmp_path / "a.txt", "-o", tmp_path / "a.npy", "--gpus-per-worker", "1")
    assert "--gpus-per-worker: only with --engine ray" in line
    assert "--address applies to --engine ray" in _one_error_line(capsys, "study", "configs/topic_sentiment.yaml", "--address", "auto")


def test_bad_ray_jobs_are_refused_before_a_cluster_starts(capsys, tmp_path, tiny_task_model):
    (tmp_path / "in").mkdir()
    assert "no .txt/.csv/.jsonl/.parquet files in this folder" in _one_error_line(
        capsys, "encode", tmp_path / "in", "-o", tmp_path / "out", "--engine", "ray")
    (tmp_path / "in" / "a.txt").write_text("hello\n")
    assert "no file matches it as a pattern" in _one_error_line(capsys, "encode", tmp_path / "nope*.txt", "-o", tmp_path / "o", "--engine", "ray")
    assert "--engine ray writes a folder of Parquet shards: give -o OUT_DIR" in _one_error_line(
        capsys, "predict", tiny_task_model, "--input", tmp_path / "in", "--engine", "ray")
    assert "not TEXT arguments" in _one_error_line(capsys, "predict", tiny_task_model, "some text", "--engine", "ray")
    assert "sentimnt" in _one_error_line(capsys, "predict", tiny_task_model, "--input", tmp_path / "in", "-o", tmp_path / "p",
                                         "--engine", "ray", "--tasks", "sentimnt")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text("{}")
    assert "add --resume to finish it" in _one_error_line(capsys, "encode", tmp_path / "in", "-o", tmp_path / "out", "--engine", "ray")
