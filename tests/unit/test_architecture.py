"""How the server's modules may depend on each other, checked from their import statements."""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "server"


def _imports() -> dict[str, set[str]]:
    """server module -> the server modules it imports (at any level, type checking included)."""
    graph: dict[str, set[str]] = {}
    for path in SERVER.glob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names |= {node.module} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nst_server."):
                names.add(node.module.split(".")[1])
        graph[path.stem] = {name for name in names if (SERVER / f"{name}.py").exists()}
    return graph


def test_no_import_cycle_in_the_server():
    graph, done, path = _imports(), set(), []

    def visit(module: str) -> None:
        assert module not in path, f"import cycle: {' -> '.join([*path, module])}"
        if module in done:
            return
        path.append(module)
        for imported in graph[module]:
            visit(imported)
        path.pop()
        done.add(module)

    for module in graph:
        visit(module)


def _third_party(module: str) -> set[str]:
    tree = ast.parse((SERVER / f"{module}.py").read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level
              and n.module}
    return {name.split(".")[0] for name in names}


def test_only_the_web_layer_speaks_http():
    """Domain modules raise domain errors; statuses and headers belong to api.py and app.py."""
    graph = _imports()
    assert {m for m, imported in graph.items() if "http_errors" in imported} == {"app", "api"}
    for module in ("jobs", "imagecodec", "submission", "store", "worker", "service", "errors"):
        assert "flask" not in _third_party(module), module


def test_every_domain_error_has_an_http_status():
    """A new domain error without a status would answer 500 instead of saying what is wrong."""
    from nst_server.api import STATUS
    from nst_server.errors import ServerError

    assert set(ServerError.__subclasses__()) == set(STATUS)
