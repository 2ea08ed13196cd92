"""YAML into annotated dataclasses, with the file, line and field of every error.

Generic over the dataclasses it builds (the run config is one user): mappings remember the
line of each key, `dotted.key=value` overrides remember that they came from the command line,
and unions, lists, dicts and nested dataclasses are checked recursively.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError


class _Located(dict):
    """A mapping that remembers the YAML line of each key, and the word behind each boolean value."""

    lines: dict[str, int]
    words: dict[str, str]


MAX_EXPANDED_VALUES = 100_000
"""Most values a config may grow to through its aliases (`*name`): a few hundred bytes of nested
aliases (a "billion laughs" file) would otherwise expand to billions of values."""

SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp"))
COLLECTION_TAGS = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}


def compose_with_lines(text: str, path: Path | None, scalars_as_written: bool = False) -> Any:
    """Parse YAML safely (no tags beyond plain values, bounded aliases) into line-tracking mappings.

    `scalars_as_written`: every scalar is the string the user wrote (`no` stays "no"), for files whose
    values are all names, such as label maps.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError(f"not valid YAML ({getattr(error, 'problem', error)})", file=path, line=mark.line + 1 if mark else None) from None
    if node is None:
        return {}
    _check_expansion(node, path)
    return _to_python(node, path, scalars_as_written)


def _check_expansion(root: yaml.Node, path: Path | None) -> None:
    """Refuse recursive aliases and aliases that expand past MAX_EXPANDED_VALUES, without expanding them.

    The composed graph shares one node per anchor, so each node's expanded size is counted once.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    aliased = False

    def size(node: yaml.Node) -> int:
        nonlocal aliased
        key = id(node)
        if key in sizes:
            aliased = True
            return sizes[key]
        if key in open_nodes:
            raise InputError("a YAML alias (*name) refers to a value that contains it", file=path, line=node.start_mark.line + 1)
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in node.value)
        else:
            total = 1
        open_nodes.discard(key)
        sizes[key] = total
        if aliased and total > MAX_EXPANDED_VALUES:
            raise InputError(
                f"the YAML aliases (*name) expand to more than {MAX_EXPANDED_VALUES:,} values; write the values out instead",
                file=path, line=node.start_mark.line + 1,
            )
        return total

    size(root)


def _shown_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _check_tag(node: yaml.Node, path: Path | None) -> None:
    allowed = COLLECTION_TAGS.get(type(node))
    if node.tag == "tag:yaml.org,2002:merge":
        raise InputError("merge keys (<<: *name) are not supported in a config: write the keys out", file=path, line=node.start_mark.line + 1)
    if (node.tag != allowed) if allowed is not None else (node.tag not in SCALAR_TAGS):
        raise InputError(
            f"the YAML tag {_shown_tag(node.tag)} is not allowed in a config: write plain values, lists and mappings",
            file=path, line=node.start_mark.line + 1,
        )


def _to_python(node: yaml.Node, path: Path | None, as_written: bool = False) -> Any:
    _check_tag(node, path)
    if isinstance(node, yaml.MappingNode):
        out = _Located()
        out.lines = {}
        out.words = {}
        for key_node, value_node in node.value:
            key = str(_to_python(key_node, path, as_written))
            out[key] = value = _to_python(value_node, path, as_written)
            out.lines[key] = key_node.start_mark.line + 1
            if isinstance(value, bool):
                out.words[key] = value_node.value
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(n, path, as_written) for n in node.value]
    if as_written:
        return node.value
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def build_dataclass(cls: Any, data: Any, where: str, file: Path | None, line: int | None) -> Any:
    """Recursively turn plain data into the annotated type, with located errors."""
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(cls)
        if data is None and type(None) in options:
            return None
        # Only the options of the value's shape are tried, so a mapping's error names its own key.
        shaped = [o for o in options if o is not type(None) and _same_shape(o, data)]
        if isinstance(data, dict) and len(shaped) > 1:
            # Several mappings fit (files or a Hugging Face dataset): the one whose fields the keys name
            # most, the first on a tie, so a misspelt key gets that class's did-you-mean.
            shaped = [max(shaped, key=lambda o: len(set(data) & _field_names(o)))]
        candidates = shaped or [o for o in options if o is not type(None)]
        errors = []
        for option in candidates:
            try:
                return build_dataclass(option, data, where, file, line)
            except InputError as error:
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        raise InputError(f"expected {' or '.join(_type_name(o) for o in options)}, got {data!r}", file=file, line=line, field=where)
    if dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise InputError(f"expected a mapping for {cls.__name__}, got {type(data).__name__}", file=file, line=line, field=where)
        hints = typing.get_type_hints(cls)
        # A field may be written under another key (metadata "key"), e.g. `from`, which Python cannot name.
        names = {f.metadata.get("key", f.name): f.name for f in dataclasses.fields(cls)}
        names.update({f.name: f.name for f in dataclasses.fields(cls)})
        shown = sorted({f.metadata.get("key", f.name) for f in dataclasses.fields(cls)})
        kwargs = {}
        lines = getattr(data, "lines", {})
        words = getattr(data, "words", {})
        for key, value in data.items():
            key_where = f"{where}.{key}" if where else key
            if key in names:
                value = _as_written(hints[names[key]], value, words.get(key))
            key_file, key_line = _key_location(lines, key, file, line)
            if key not in names:
                close = difflib.get_close_matches(key, shown, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InputError(f"unknown key{hint}; {cls.__name__} has {', '.join(shown)}", file=key_file, line=key_line, field=key_where)
            kwargs[names[key]] = build_dataclass(hints[names[key]], value, key_where, key_file, key_line)
        try:
            return cls(**kwargs)
        except InputError as error:
            if error.file is None:
                field_name = error.field or where
                relative = field_name[len(where) + 1:] if where and field_name.startswith(f"{where}.") else field_name if not where else ""
                at_file, at_line = _locate(data, relative, file, line)
                raise InputError(error.reason, file=at_file, line=at_line, field=field_name) from None
            raise
        except (TypeError, ValueError) as error:
            raise InputError(str(error), file=file, line=line, field=where) from None
    if origin is dict:
        key_type, value_type = typing.get_args(cls)
        if not isinstance(data, dict):
            raise InputError(f"expected a mapping, got {type(data).__name__}", file=file, line=line, field=where)
        lines = getattr(data, "lines", {})
        return {str(k): build_dataclass(value_type, v, f"{where}.{k}", *_key_location(lines, k, file, line)) for k, v in data.items()}
    if origin is list:
        (item_type,) = typing.get_args(cls)
        if not isinstance(data, list):
            raise InputError(f"expected a list, got {type(data).__name__}", file=file, line=line, field=where)
        return [build_dataclass(item_type, v, f"{where}.{i}", file, line) for i, v in enumerate(data)]
    if cls is Any or cls is dict:
        return _plain(data)
    if cls is float and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if cls is float and isinstance(data, str):
        # YAML 1.1 reads `1e-4` (no dot) as a string; accept it as the number it means.
        try:
            return float(data)
        except ValueError:
            pass
    if cls is int and isinstance(data, int) and not isinstance(data, bool):
        return data
    if cls is str and isinstance(data, str):
        return data
    if cls is bool and isinstance(data, bool):
        return data
    if cls is str and isinstance(data, bool):
        raise InputError(
            f"expected str, got {data!r} (YAML reads unquoted yes/no/on/off/true/false as booleans: quote the word)",
            file=file, line=line, field=where,
        )
    if cls in (int, float, str, bool):
        raise InputError(f"expected {cls.__name__}, got {data!r}", file=file, line=line, field=where)
    return data


def _as_written(tp: Any, value: Any, word: str | None) -> Any:
    """The word itself where YAML 1.1 read `no`, `off`, `yes`... as a boolean but the field takes a
    string and no boolean (`mixed_precision: no` means "no", as in Accelerate)."""
    if not isinstance(value, bool) or word is None:
        return value
    options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    return word if str in options and bool not in options else value


def _field_names(tp: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(tp)} if dataclasses.is_dataclass(tp) else set()


def _same_shape(tp: Any, data: Any) -> bool:
    """Whether `data` has the shape of `tp`: a mapping for dataclasses and dicts, a list for lists."""
    origin = typing.get_origin(tp) or tp
    if isinstance(data, dict):
        return dataclasses.is_dataclass(tp) or origin is dict
    if isinstance(data, list):
        return origin is list
    return not (dataclasses.is_dataclass(tp) or origin in (dict, list))


class _Override(str):
    """Where a value given on the command line came from: `command line: key=value`."""


def _key_location(lines: dict, key: str, file: Any, line: int | None) -> tuple[Any, int | None]:
    """(file, line) of a key: its YAML line, or the override that set it."""
    found = lines.get(key)
    if isinstance(found, _Override):
        return found, None
    return file, found if found is not None else line


def _locate(data: Any, dotted: str, file: Any, line: int | None) -> tuple[Any, int | None]:
    """(file, line) of a dotted field inside `data`, as deep as the data goes."""
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(data, dict):
            break
        file, line = _key_location(getattr(data, "lines", {}), part, file, line)
        data = data.get(part)
    return file, line


def _plain(data: Any) -> Any:
    """Line-tracking mappings back to plain dicts (for free-form fields)."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def apply_override(data: dict, override: str) -> None:
    if "=" not in override:
        raise InputError(f"override {override!r} is not key=value")
    key, raw = override.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise InputError(f"override {override!r} has an empty key")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    source = _Override(f"command line: {override}")
    target = data
    for part in parts[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = _Located()
            target[part].lines = {}
            _set_line(target, part, source)
        target = target[part]
    target[parts[-1]] = value
    _set_line(target, parts[-1], source)
    if isinstance(value, bool) and isinstance(target, _Located):
        if not hasattr(target, "words"):
            target.words = {}  # type: ignore[attr-defined]
        target.words[parts[-1]] = raw.strip()  # type: ignore[attr-defined]


def _set_line(mapping: dict, key: str, source: _Override) -> None:
    if not hasattr(mapping, "lines"):
        return
    mapping.lines[key] = source
