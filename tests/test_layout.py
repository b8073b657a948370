"""The layout's rules, checked over the source tree: small modules, no import cycles, an SDK that never imports the
analyzer, and public names only through the facades (``otelml`` and ``otelml.analyzer``)."""

from __future__ import annotations

import ast
import importlib
import re
import textwrap
from pathlib import Path

import otelml

ROOT = Path(otelml.__file__).resolve().parent
MAX_LINES = 350
LONG = "(long: "  # how a module over MAX_LINES gives its reason, in its docstring
RUNS_THE_ANALYZER = {"otelml.cli", "otelml.demo", "otelml.testing"}  # they start it; the SDK proper never does


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, top_level_only: bool) -> set[str]:
    """The otelml modules ``name`` imports (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # ``from . import x`` imports module x
    known = modules()
    return {m for m in found if m in known and m != name}


def test_no_module_is_long_without_its_reason():
    long = []
    for name, path in modules().items():
        lines = path.read_text().count("\n")
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and LONG not in docstring:
            long.append(f"{name}: {lines} lines")
    assert not long, f"over {MAX_LINES} lines with no '{LONG}...' reason in the docstring: {long}"


def test_there_is_no_import_cycle():
    """Module-level imports only: an import inside a function runs after every module is loaded."""
    graph = {name: imports(name, path, top_level_only=True) for name, path in modules().items()}
    graph = {name: {m for m in deps if not name.startswith(m + ".")} for name, deps in graph.items()}  # parents
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def test_the_sdk_never_imports_the_analyzer():
    """Anywhere in a module, even inside a function: the SDK runs in the model's process."""
    offending = [
        f"{name} imports {sorted(m for m in imports(name, path, top_level_only=False) if m.startswith('otelml.analyzer'))}"
        for name, path in modules().items()
        if not name.startswith("otelml.analyzer") and name not in RUNS_THE_ANALYZER
        if any(m.startswith("otelml.analyzer") for m in imports(name, path, top_level_only=False))
    ]
    assert not offending, offending


def test_the_facades_export_what_they_list():
    for facade in ("otelml", "otelml.analyzer"):
        module = importlib.import_module(facade)
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert module.__all__ and not missing, f"{facade}.__all__ names what it does not have: {missing}"


def python_in(path: Path) -> list[str]:
    """The Python code of a file: all of a ``.py`` file, the ``python`` code blocks of a Markdown one."""
    text = path.read_text()
    if path.suffix == ".py":
        return [text]
    return [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)\s*```", text, flags=re.S)]


def test_documents_and_examples_use_only_public_names():
    """Every ``otelml.X`` in the Python of the README, docs and examples is in ``otelml.__all__`` or is one of the
    documented modules; every ``from otelml.M import N`` names a facade or documented module."""
    documented = {"semconv", "analyzer", "testing", "histogram"}
    used = set()
    for path in [Path("README.md"), *Path("docs").glob("*.md"), *Path("examples").rglob("*.py")]:
        for code in python_in(path):
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "otelml":
                    used.add(node.attr)
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("otelml."):
                    used.add(node.module.split(".")[1])
    private = sorted(name for name in used if name not in otelml.__all__ and name not in documented)
    assert not private, private
