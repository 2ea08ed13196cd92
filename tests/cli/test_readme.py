"""The README's commands run as written, in order, one after another.

The fast test reads every block and checks that no two training commands write the same run
directory (the README's blocks once collided: "already holds a run"). The slow one copies the
configs to a fresh folder and runs the training section's commands in order, each as written
with a few appended overrides that shrink it to a tiny budget (fewer steps and examples),
including the two-process `accelerate launch` line, whose run must record 2 processes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def readme_blocks() -> list[tuple[str, str, int]]:
    """(language, text, first line) of every fenced block."""
    blocks, language, lines, start = [], None, [], 0
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            if language is None:
                language, lines, start = line[3:].strip() or "text", [], number + 1
            else:
                blocks.append((language, "\n".join(lines), start))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def shell_commands(text: str) -> list[list[str]]:
    """A bash block's commands as argument lists (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def _is_train(words: list[str]) -> bool:
    return any(w == "polyhead" or w.endswith("bin/polyhead") for w in words) and "train" in words


def _config_output_dir(config: str, overrides: list[str]) -> Path:
    explicit = [o.split("=", 1)[1] for o in overrides if o.startswith("output_dir=")]
    if explicit:
        return (REPO / explicit[-1]).resolve()
    data = yaml.safe_load((REPO / config).read_text(encoding="utf-8"))
    return ((REPO / config).parent / data["output_dir"]).resolve()


def training_runs() -> list[tuple[int, str, Path]]:
    """(README line, command, run directory) of every command that starts a fresh training run."""
    runs = []
    for language, text, line in readme_blocks():
        if language == "bash":
            for words in shell_commands(text):
                if not _is_train(words) or "--resume" in words:
                    continue
                after = words[words.index("train") + 1:]
                config = next(w for w in after if w.endswith((".yaml", ".yml")))
                runs.append((line, " ".join(words), _config_output_dir(config, [w for w in after if "=" in w])))
        elif language == "python":
            for config, overrides in re.findall(r'train\(load_config\("([^"]+)"(?:, \[([^\]]*)\])?\)', text):
                items = re.findall(r'"([^"]+)"', overrides or "")
                runs.append((line, f"train(load_config({config!r}, {items}))", _config_output_dir(config, items)))
    return runs


def test_no_two_readme_commands_train_into_the_same_run_directory():
    runs = training_runs()
    assert len(runs) >= 5  # the training section (one process and two), the Python example, add-a-task
    seen: dict[Path, str] = {}
    for line, command, run_dir in runs:
        assert run_dir not in seen, f"README.md:{line}: {command} trains into {run_dir}, as {seen[run_dir]} does"
        seen[run_dir] = f"README.md:{line}: {command}"


def test_the_readme_multi_process_command_names_its_launcher():
    launches = [words for language, text, _ in readme_blocks() if language == "bash"
                for words in shell_commands(text) if "launch" in words and "accelerate" in words[0]]
    assert launches, "the README shows how to train on several processes"
    for words in launches:
        assert "--multi_gpu" in words and "--num_processes" in words


# ---------------------------------------------------------------- the slow walk

TINY = ["training.eval_every=2", "training.log_every=2", "training.progress=false", "model.max_seq_length=32"]


def _shrunk(words: list[str], cwd: Path | None = None) -> list[str]:
    """The command as written plus overrides that make it tiny: steps divided by 50, small task subsets (also of the
    old tasks of a starting model found under `cwd`, which the run evaluates before and after)."""
    words = [f"training.max_steps={max(2, int(w.split('=')[1]) // 50)}" if w.startswith("training.max_steps=") else w
             for w in words]
    if "train" not in words:
        return [*words, "--max-examples", "24"] if "evaluate" in words else words
    after = words[words.index("train") + 1:]
    extra = [] if any(w.startswith("training.max_steps=") for w in after) else ["training.max_steps=4"]
    if "--resume" not in words:
        config = next(w for w in after if w.endswith(".yaml"))
        settings = yaml.safe_load((REPO / config).read_text(encoding="utf-8"))
        tasks = list(settings["tasks"])
        start = settings.get("model", {}).get("from")
        if start is not None and cwd is not None:
            saved = json.loads(((cwd / config).parent / start / "polyhead_model.json").read_text(encoding="utf-8"))
            tasks += [t["name"] for t in saved["tasks"] if t["name"] not in tasks]
        extra += TINY + [f"tasks.{t}.{key}={n}" for t in tasks for key, n in (("max_train_examples", 48), ("max_eval_examples", 24))]
    return [*words, *extra]


def _section_commands(heading: str) -> list[tuple[str, object]]:
    """The bash commands and Python blocks between `heading` and the next heading of its level, in order."""
    text = README.read_text(encoding="utf-8")
    level = heading.split(" ")[0]
    section = text.split(f"\n{heading}\n", 1)[1]
    section = re.split(rf"\n{level} ", section, maxsplit=1)[0]
    steps: list[tuple[str, object]] = []
    for language, body in re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S):
        if language == "bash":
            steps += [("bash", words) for words in shell_commands(body)]
        elif language == "python":
            steps.append(("python", body))
    return steps


@pytest.mark.slow  # the real model trained several times, and two processes: `make test-slow`, run by CI
def test_the_training_section_runs_in_order_as_written(tmp_path):
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    steps = _section_commands("## Multi-task training")
    # The 18-run study and the speed benchmark have their own tests.
    steps = [s for s in steps if not (s[0] == "bash" and ("study" in s[1] or s[1][0] == "make"))]
    assert [s[0] for s in steps].count("bash") >= 6
    ran = []
    for kind, step in steps:
        if kind == "python":
            shrink = ", ".join(repr(o) for o in TINY + ["tasks.topic.max_train_examples=48", "tasks.sentiment.max_train_examples=48",
                                                        "tasks.topic.max_eval_examples=24", "tasks.sentiment.max_eval_examples=24"])
            code = step.replace('"training.max_steps=200"', f'"training.max_steps=4", {shrink}')
            command = [sys.executable, "-c", code]
        else:
            command = _shrunk(list(step), tmp_path)
            if command[0].endswith("accelerate"):
                command.insert(command.index("--num_processes"), f"--main_process_port={port}")
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
        assert done.returncode == 0, f"{' '.join(map(str, command))}\n{done.stderr[-3000:]}"
        ran.append((command, done))
    runs = tmp_path / "runs"
    for name in ("topic_sentiment", "quick", "two_processes", "python_api", "add_subjectivity"):
        assert (runs / name / "model").is_dir(), name
    start = next(json.loads(line) for line in (runs / "two_processes" / "metrics.jsonl").read_text().splitlines()
                 if '"start"' in line)
    assert start["processes"] == 2
    launch_output = next(done.stdout for command, done in ran if command[0].endswith("accelerate"))
    assert "training on 2 processes: cpu, cpu (gloo)" in launch_output or "training on 2 processes: cuda:0, cuda:1" in launch_output
    assert (runs / "topic_sentiment" / "errors.csv").is_file()
    resumed = [json.loads(line) for line in (runs / "quick" / "metrics.jsonl").read_text().splitlines()]
    assert any(str(e.get("message", "")).startswith("resumed from step") for e in resumed)
