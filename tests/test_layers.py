"""Layers point one way: data <- models <- workflows <- the command line and the Python
API (``starmix/__init__.py``); validation, benchmarks and tests sit above them all, and no
module imports itself through a cycle. The layers are the subpackages ``starmix.data``,
``starmix.models`` and ``starmix.workflows`` (the top-level folders ``data/``, ``models/``,
``workflows/``), named here without the ``starmix.`` prefix.

Every import counts, at module level or inside a function (a deferred import is still a
dependency)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("data", "models", "workflows")  # each may import only those before it
API = "api"  # the package's own __init__: starmix.fit_cluster, starmix.fit_outlier_line
ABOVE = (API, "validation", "benchmarks", "tests")


def imports_of(path: Path) -> set[str]:
    """The project modules (dotted names, ``starmix.`` dropped; ``starmix`` itself is
    ``api``) a file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    found = {name.removeprefix("starmix.") if name.split(".")[1:2] and
             name.split(".")[1] in LAYERS else API if name.split(".")[0] == "starmix" else name
             for name in found}
    return {name for name in found if name.split(".")[0] in (*LAYERS, *ABOVE)}


def project_modules(packages=LAYERS) -> dict[str, Path]:
    modules = {}
    for package in packages:
        for path in sorted((ROOT / package).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_nothing_above_it(layer):
    forbidden = (*LAYERS[LAYERS.index(layer) + 1:], *ABOVE)
    offending = {name: sorted(target for target in imports_of(path)
                              if target.split(".")[0] in forbidden)
                 for name, path in project_modules().items() if name.split(".")[0] == layer}
    assert not {name: found for name, found in offending.items() if found}


def test_no_module_imports_in_a_cycle():
    modules = project_modules((*LAYERS, "validation"))
    graph = {name: {target if target in modules else target.rsplit(".", 1)[0]
                    for target in imports_of(path)} & set(modules) - {name}
             for name, path in modules.items()}
    for package in (*LAYERS, "validation"):  # an __init__ may re-export its own modules
        graph[package] = {target for target in graph[package]
                          if target.split(".")[0] != package}
    cycles, state = [], {}

    def visit(name, stack):
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target, [*stack, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def test_the_layer_check_sees_a_violation(tmp_path):
    # the checker itself: an upward import in a data module is found
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from starmix.workflows.results import atomic_path\n")
    assert imports_of(bad) == {"workflows.results", "workflows.results.atomic_path"}
    bad.write_text("import starmix\nfrom starmix import fit_cluster\n")
    assert imports_of(bad) == {API}


def test_the_layers_are_imported_only_through_the_package():
    """``from models.field import ...`` would load a second copy of a module under another
    name (and fails once installed): every import of a layer goes through ``starmix.``."""
    bare = {}
    for path in sorted(ROOT.glob("*/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                     and node.module else [])
            found = [name for name in names if name.split(".")[0] in LAYERS]
            if found:
                bare.setdefault(str(path.relative_to(ROOT)), []).extend(found)
    assert not bare


def test_the_package_is_the_top_level_folders():
    """``starmix.models`` and friends are the project's top-level folders (through links in
    ``starmix/``), not copies."""
    import starmix.data
    import starmix.models
    import starmix.workflows

    for package in (starmix.data, starmix.models, starmix.workflows):
        folder = Path(package.__file__).resolve().parent
        assert folder == ROOT / package.__name__.split(".")[1]
