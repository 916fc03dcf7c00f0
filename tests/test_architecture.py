"""The house rules of ``fgvc_lib``, checked on its static import graph.

Every ``import`` statement counts, at module level or inside a function (a
function-level import hides a dependency; it does not remove it). Importing
``a.b.c`` also runs the packages ``a.b`` and ``a``, so those count as
dependencies too, except the importer's own ancestors (Python has already
run them before the importer).

Rules (see ``fgvc_lib/methods/__init__.py``):

* no import cycles;
* ``fgvc_lib.data`` imports nothing of the library but itself, ``errors`` and ``io``;
* the model core (``fgvc_lib.models``) never imports the engine, the reports,
  the config, a method, the CLI or the notebook helpers;
* nothing outside a method's folder names the method's id, except the one
  list of packages (``fgvc_lib/methods/__init__.py``). The baseline is the
  exception: it is the library's default method and the reference row of
  every comparison.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "fgvc_lib"
PACKAGE = "fgvc_lib"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Library modules that ``name`` imports anywhere in its file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one;
            # it depends on ``pkg``'s own code only for the names that are not submodules.
            subs = {f"{base}.{alias.name}" for alias in node.names
                    if f"{base}.{alias.name}" in modules}
            found.update(subs)
            if len(subs) < len(node.names):
                found.add(base)
    targets: set[str] = set()
    for target in found:
        if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
            continue
        while target not in modules and "." in target:
            target = target.rpartition(".")[0]  # ``from mod import function``
        targets.add(target)
        parts = target.split(".")
        for i in range(1, len(parts)):
            ancestor = ".".join(parts[:i])
            if not (name == ancestor or name.startswith(ancestor + ".")):
                targets.add(ancestor)
    targets.discard(name)
    return targets


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_graph_sees_function_level_imports(graph):
    # A guard on the test itself: ``fgvc_lib.reports.tables`` discovers the tables
    # inside a function; a graph that missed it would miss hidden layer leaks too.
    assert "fgvc_lib.methods" in graph["fgvc_lib.reports.tables"]
    assert "fgvc_lib.errors" in graph["fgvc_lib.data.base"]


def test_no_import_cycles(graph):
    assert _cycles(graph) == [], "import cycles (module-level or function-level imports)"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_data_imports_nothing_above_it(graph):
    allowed = ("fgvc_lib.data", "fgvc_lib.errors", "fgvc_lib.io")
    leaks = {name: sorted(t for t in targets if not any(_under(t, a) for a in allowed)
                          and t != PACKAGE)
             for name, targets in graph.items() if _under(name, "fgvc_lib.data")}
    assert {k: v for k, v in leaks.items() if v} == {}


def test_the_model_core_imports_no_engine_reports_config_or_method(graph):
    forbidden = ("fgvc_lib.engine", "fgvc_lib.reports", "fgvc_lib.methods", "fgvc_lib.config",
                 "fgvc_lib.cli", "fgvc_lib.notebook", "fgvc_lib.results")
    leaks = {name: sorted(t for t in targets if any(_under(t, f) for f in forbidden))
             for name, targets in graph.items() if _under(name, "fgvc_lib.models")}
    assert {k: v for k, v in leaks.items() if v} == {}


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_no_method_id_is_named_outside_its_folder():
    from fgvc_lib.methods import PACKAGES

    ids = [p for p in PACKAGES if p != "baseline"]
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "methods/__init__.py":
            continue
        for method in ids:
            if rel.startswith(f"methods/{method}/"):
                continue
            for line, text in _string_constants(path):
                if text == method or text.startswith(f"{method}."):
                    offenders.append(f"{rel}:{line} names {method!r}")
    assert offenders == []
