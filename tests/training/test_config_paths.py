"""One rule for paths: what a config file says is relative to its folder; what the command line says, to the shell's."""

from __future__ import annotations

import os
from pathlib import Path

from polyhead.training.config import load_config

from .conftest import REPO


def _write(folder: Path, output_dir: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = "tasks:\n  s:\n    data: rotten_tomatoes:sentiment\n" + (f"output_dir: {output_dir}\n" if output_dir else "")
    (folder / "c.yaml").write_text(text)
    return folder / "c.yaml"


def test_output_dir_in_a_config_is_relative_to_the_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _write(tmp_path / "configs" / "deep", "../runs/x")
    assert Path(load_config(config).output_dir) == tmp_path / "configs" / "runs" / "x"
    assert load_config(config, ["output_dir=here"]).output_dir == "here"  # the command line: the current directory
    assert load_config(_write(tmp_path / "abs", str(tmp_path / "elsewhere"))).output_dir == str(tmp_path / "elsewhere")
    assert load_config(_write(tmp_path / "none", None)).output_dir == "runs/polyhead"  # the program's default: current directory


def test_shipped_configs_write_under_the_projects_runs_folder():
    for config in [*(REPO / "configs").glob("*.yaml"), *(REPO / "configs" / "recipes").glob("*.yaml")]:
        output = Path(load_config(config).output_dir)
        assert output.parent == REPO / "runs", (config, output)
        assert os.path.isabs(output)
