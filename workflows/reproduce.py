"""``starmix reproduce``: rerun each workflow's examples with their defaults and refresh
``figures/``.

The runs, the figures' file names and their captions come from the registry
(:mod:`starmix.workflows.registry`: each workflow's ``examples`` and ``figures``). Each
folder of figures gets an index, ``README.md``, with one section per run: the command that
makes it, its convergence gate's status and a table of its figures.
"""

import shutil
from pathlib import Path

from starmix.workflows import registry
from starmix.workflows.base import Example, Workflow
from starmix.workflows.runs.files import atomic_path, write_text

INTRODUCTIONS = {
    "": ["# Reference figures", "",
         "Written by `starmix reproduce` (also `make reproduce`), which runs each workflow "
         "with its defaults (seed 42, 4 chains x 1000 draws) and copies the figures here. "
         "The NGC 6819 runs use the simulated field (`starmix simulate ngc6819`).", ""],
    "density": ["# Density figures", "",
                "Written by `starmix reproduce --only density ages` (seed 42, 4 chains x (1000 "
                "tuning + 2000 draws), the density workflows' defaults).", ""],
}
LINKS = {"": ["## Densities", "", "The density and ages workflows' figures: "
              "[density/README.md](density/README.md).", ""]}


def reproduce_choices() -> list[str]:
    """What ``--only`` takes: workflow names and the labels of single runs."""
    names = list(registry.WORKFLOWS)
    return names + [example.label for workflow in registry.WORKFLOWS.values()
                    for example in workflow.example_runs() if example.label not in names]


def chosen_runs(only=None) -> list[tuple[Workflow, Example]]:
    """The (workflow, example) pairs to run: all, or those ``only`` names (a workflow's name
    takes all of its examples)."""
    return [(workflow, example) for workflow in registry.WORKFLOWS.values()
            for example in workflow.example_runs()
            if only is None or workflow.name in only or example.label in only]


def _copy(source: Path, target: Path) -> None:
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)


def run_example(workflow: Workflow, example: Example, figures_dir: Path, out_dir: Path):
    """Run one example, copy its figures into ``figures_dir / example.folder``; returns
    (its exit code, its index section)."""
    inputs_class, runner = workflow.load()  # the runner's defaults are the workflow's
    result = runner(out_dir / (example.out or example.label), inputs_class(**example.inputs))
    target = figures_dir / example.folder
    target.mkdir(parents=True, exist_ok=True)
    rows = []
    for key, path in result.files.items():
        if key.startswith("figure_"):
            name = f"{example.prefix}{Path(path).name}"
            _copy(path, target / name)
            caption = workflow.caption(key.removeprefix("figure_"))
            rows.append(f"| [{name}]({name}) | {example.caption_prefix}{caption} |")
    section = [f"## {example.title}", "", f"Made by `{example.command}`; convergence gate: "
               f"**{result.status}**.", "", "| figure | what it shows |", "| --- | --- |",
               *rows, ""]
    return result.exit_code, section


def reproduce(figures_dir: Path, out_dir: Path, only=None) -> int:
    """Run the chosen examples (all by default; see :func:`chosen_runs`), copy their
    figures and rewrite the index of each folder they wrote to. Returns 0 when every run
    passed its gate, else the largest exit code (figures are still written)."""
    codes, sections = [], {}
    for workflow, example in chosen_runs(only):
        code, section = run_example(workflow, example, figures_dir, out_dir)
        codes.append(code)
        sections.setdefault(example.folder, []).extend(section)
    for folder, lines in sections.items():  # a folder none of the runs wrote keeps its index
        index = [*INTRODUCTIONS.get(folder, [f"# {folder} figures", ""]), *lines,
                 *LINKS.get(folder, [])]
        write_text(figures_dir / folder / "README.md", "\n".join(index))
    print(f"figures written to {figures_dir.resolve()}")
    return max(codes, default=0)
