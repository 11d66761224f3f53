"""Layers point one way: the core imports nothing above it, and only the shell imports the shell."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = "partner_signals"
SERVICES = ("ingest", "api", "pipelines")
# What each layer must never import, by top-level package.
FORBIDDEN: dict[str, frozenset[str]] = {
    CORE: frozenset({*SERVICES, "cli", "bench", "tests"}),
    **{service: frozenset({"cli"}) for service in SERVICES},
}
# importlib calls that take a module name: mounting by name is an import all the same.
DYNAMIC_IMPORTS = frozenset({"import_module", "find_spec", "__import__"})


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a module, importlib calls included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                name in DYNAMIC_IMPORTS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.append((node.lineno, first.value))
    return found


def violations(root: Path) -> list[str]:
    """One line per import that points up a layer, as `path:line imports module`."""
    hits: list[str] = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for line, module in imported_modules(tree):
                if module.split(".")[0] in forbidden:
                    hits.append(f"{path.relative_to(root)}:{line} imports {module}")
    return hits


def test_no_layer_imports_a_layer_above_it() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        (CORE, "from ingest.bulk import ingest_file\n", "imports ingest.bulk"),
        (CORE, "def f():\n    import pipelines.run\n", ":2 imports pipelines.run"),
        (CORE, "import importlib\nimportlib.import_module('api.cli')\n", ":2 imports api.cli"),
        (CORE, "from cli.main import app\n", "imports cli.main"),
        ("api", "from cli.main import app\n", "imports cli.main"),
        ("pipelines", "from tests.conftest import x\n", None),
    ],
)
def test_an_upward_import_is_named_with_its_file_and_line(
    tmp_path: Path, package: str, source: str, expected: str | None
) -> None:
    for name in FORBIDDEN:
        (tmp_path / name).mkdir()
    (tmp_path / package / "module.py").write_text(source)
    hits = violations(tmp_path)
    if expected is None:
        assert hits == []  # only the core is kept from tests and bench
    else:
        (hit,) = hits
        assert hit.startswith(f"{package}/module.py:") and expected in hit
