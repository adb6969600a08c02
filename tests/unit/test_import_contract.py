"""The import contract of pyproject.toml holds the whole hub, and no module imports itself
back through others: a cycle would let a change at the bottom break the top in ways no
layer shows (`lint-imports` checks the direction between layers, this the rest)."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    return [[name.strip() for name in layer.replace("|", ":").split(":")] for layer in layers]


@functools.cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("hub", "webhooks")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(
                        child)))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_back() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    assert _cycles(graph) == [["a", "b", "c"]]


def test_every_module_of_the_hub_has_its_layer() -> None:
    """A new module must say where it stands: else the contract would not check it."""
    named = [name for layer in _layers() for name in layer]
    # The package `hub` itself builds the app (create_app): above every layer.  Packages'
    # __init__ modules are docstrings only (the last test here).
    unplaced = {module for module in _graph().modules
                if module.startswith("hub.") and not _is_package(module)
                and not any(module == name or module.startswith(name + ".") for name in named)}
    assert unplaced == set()


def _is_package(module: str) -> bool:
    path = ROOT / Path(*module.split(".")) / "__init__.py"
    return path.exists()


def test_each_package_of_the_hub_opens_with_what_it_owns_and_nothing_else() -> None:
    """A package's __init__ says what the capability is and owns; it re-exports nothing, so
    an import names the module that does the work."""
    import ast

    for init in sorted((ROOT / "hub").glob("*/__init__.py")):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), init
        assert isinstance(body[0].value, ast.Constant) and len(body[0].value.value) > 40, init
