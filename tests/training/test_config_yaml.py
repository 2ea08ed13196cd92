"""Hostile or surprising YAML in a run config: one located line (exit 2 in the CLI), at once.

Tags that name Python objects or unknown types, alias bombs and YAML 1.1's yes/no words
are what a config file can hold beyond plain mappings, lists and scalars.
"""

from __future__ import annotations

import time

import pytest

from polyhead.errors import InputError
from polyhead.training import load_config

from .conftest import run_polyhead

BASE = "tasks:\n  a:\n    data: jeopardy\n"


@pytest.mark.parametrize(
    "line, tag",
    [
        ('output_dir: !!python/name:os.system ""', "!!python/name:os.system"),
        ('output_dir: !!python/int "1"', "!!python/int"),
        ("output_dir: !custom x", "!custom"),
        ("output_dir: !!set {a, b}", "!!set"),
        ("output_dir: !!python/object/apply:os.system [echo hi]", "!!python/object/apply:os.system"),
    ],
)
def test_a_tagged_value_is_one_located_error(tmp_path, line, tag):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + line + "\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert caught.value.line == 4 and tag in str(caught.value) and "tag" in str(caught.value)


def test_standard_tags_still_mean_their_type(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "output_dir: !!str 123\ntraining:\n  max_steps: !!int '7'\n")
    config = load_config(path)
    assert config.training.max_steps == 7 and config.output_dir.endswith("123")


def test_the_cli_prints_one_line_and_exits_2_on_a_python_tag(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + 'output_dir: !!python/name:os.system ""\n')
    result = run_polyhead("train", str(path), timeout=120)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "c.yaml:4" in result.stderr


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ",".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb())
    assert len(path.read_bytes()) < 500
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert time.perf_counter() - started < 0.5
    assert "alias" in str(caught.value) and str(path) in str(caught.value)


def test_a_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(BASE + "x: &x [*x]\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert "alias" in str(caught.value)


def test_a_merge_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &b {batch_size: 8}\ntasks:\n  a:\n    data: jeopardy\ntraining:\n  <<: *b\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert caught.value.line == 6 and "merge keys" in str(caught.value)


def test_a_small_alias_is_still_a_copy(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks:\n  a:\n    data: &d jeopardy\n  b:\n    data: *d\n")
    config = load_config(path)
    assert config.tasks["a"].data == config.tasks["b"].data == "jeopardy"


@pytest.mark.parametrize("word", ["no", "off", "false", "No", "OFF"])
def test_a_yes_no_word_is_the_string_a_string_field_means(tmp_path, word):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + f"training:\n  mixed_precision: {word}\n")
    if word == "no":
        assert load_config(path).training.mixed_precision == "no"
        assert load_config(tmp_path / "c.yaml", [f"training.mixed_precision={word}"]).training.mixed_precision == "no"
    else:
        # Read as the word itself: the field's own check then names the values it takes.
        with pytest.raises(InputError) as caught:
            load_config(path)
        assert f"got {word!r}" in str(caught.value) or "must be one of" in str(caught.value)
        assert "expected str" not in str(caught.value)


def test_the_no_override_on_the_command_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BASE)
    assert load_config(path, ["training.mixed_precision=no"]).training.mixed_precision == "no"
    assert load_config(path, ["output_dir=yes"]).output_dir == "yes"
    # A boolean field still reads the same words as booleans.
    assert load_config(path, ["training.group_by_length=no"]).training.group_by_length is False
