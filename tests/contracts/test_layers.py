"""Layers point one way: data <- models <- workflows <- the command line and the Python
API (``starmix/__init__.py``); validation, benchmarks and tests sit above them all, and no
module imports itself through a cycle. The layers are the subpackages ``starmix.data``,
``starmix.models`` and ``starmix.workflows`` (the top-level folders ``data/``, ``models/``,
``workflows/``), named here without the ``starmix.`` prefix.

Inside ``workflows`` the rooms are layered too (:data:`ROOMS`): run bookkeeping, then
inference, plots, the run skeleton, the workflows themselves (which do not import one
another), surveys of clusters, the blind search, the registry, and the command line on
top.

Every import counts, at module level or inside a function (a deferred import is still a
dependency)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("data", "models", "workflows")  # each may import only those before it
API = "api"  # the package's own __init__: starmix.fit_cluster, starmix.fit_outlier_line
ABOVE = (API, "validation", "benchmarks", "tests")
# the rooms of workflows/, lowest first: a room imports its own modules and lower tiers only
ROOMS = (("runs",), ("inference",), ("plots",), ("base",), ("line", "density", "cluster"),
         ("survey",), ("search",), ("registry",), ("reproduce",), ("cli",))


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
    """Dotted name (without ``starmix.``) -> file, subpackages included."""
    modules = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def room_of(name: str) -> int | None:
    """The tier (index in :data:`ROOMS`) of a ``workflows`` module, or None."""
    parts = name.split(".")
    if parts[0] != "workflows" or len(parts) < 2:
        return None
    return next(tier for tier, rooms in enumerate(ROOMS) if parts[1] in rooms)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_nothing_above_it(layer):
    forbidden = (*LAYERS[LAYERS.index(layer) + 1:], *ABOVE)
    offending = {name: sorted(target for target in imports_of(path)
                              if target.split(".")[0] in forbidden)
                 for name, path in project_modules().items() if name.split(".")[0] == layer}
    assert not {name: found for name, found in offending.items() if found}


def test_every_workflows_module_has_a_room():
    lost = [name for name in project_modules(("workflows",)) if name != "workflows"
            and not any(name.split(".")[1] in rooms for rooms in ROOMS)]
    assert not lost, f"add these to ROOMS: {lost}"


def test_a_room_imports_only_its_own_modules_and_lower_rooms():
    offending = {}
    for name, path in project_modules(("workflows",)).items():
        tier = room_of(name)
        if tier is None:
            continue
        room = name.split(".")[1]
        for target in imports_of(path):
            other = room_of(target)
            if other is None or target.split(".")[1] == room:
                continue
            if other >= tier:
                offending.setdefault(name, []).append(target)
    assert not offending, offending


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
    bad.write_text("def f():\n    from starmix.workflows.runs.files import atomic_path\n")
    assert imports_of(bad) == {"workflows.runs.files", "workflows.runs.files.atomic_path"}
    assert room_of("workflows.runs.files") < room_of("workflows.cluster.fit")
    bad.write_text("import starmix\nfrom starmix import fit_cluster\n")
    assert imports_of(bad) == {API}


def test_the_layers_are_imported_only_through_the_package():
    """``from models.field import ...`` would load a second copy of a module under another
    name (and fails once installed): every import of a layer goes through ``starmix.``."""
    bare = {}
    for path in sorted(ROOT.glob("*/**/*.py")):
        if ".venv" in path.parts:
            continue
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
