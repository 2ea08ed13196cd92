"""The encoder knows nothing of ONNX: no import circle runs through polyhead.encoder and polyhead.inference."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "polyhead"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> polyhead modules it imports anywhere (function bodies too; TYPE_CHECKING blocks not)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    edges.add(target if target in files else base)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_encoder_reaches_no_onnx_module_and_no_module_that_imports_it_back():
    graph = import_graph()
    from_encoder = reachable(graph, "polyhead.encoder")
    assert "polyhead.encoder" not in from_encoder, "an import circle runs through polyhead.encoder"
    onnx_modules = {m for m in graph if m.startswith("polyhead.inference.") and m.split(".")[-1] in
                    ("export", "runners", "graph", "quantize", "static_int8", "onnx_encoder", "onnx_model", "session")}
    assert not from_encoder & onnx_modules, f"polyhead.encoder imports {sorted(from_encoder & onnx_modules)}"


def test_no_import_circle_inside_the_inference_package():
    graph = import_graph()
    for module in (m for m in graph if m.startswith("polyhead.inference")):
        assert module not in reachable(graph, module), f"{module} imports itself through a circle"
