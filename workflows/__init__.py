"""starmix workflows: load data, build a model, sample, gate, compute membership, save, plot.

The rooms, lowest first (each imports only its own modules and the rooms above it in this
list; ``tests/contracts/test_layers.py`` checks it):

- :mod:`starmix.workflows.runs`: options, the run record, the results folder, atomic files,
  interrupts;
- :mod:`starmix.workflows.inference`: sampling, the convergence gate, PSIS-LOO, membership,
  predictive checks, summaries (model-agnostic);
- :mod:`starmix.workflows.plots`: figures the workflows share;
- :mod:`starmix.workflows.base`: the :class:`~starmix.workflows.base.Workflow` type;
- the workflows, which do not import one another: :mod:`starmix.workflows.line`,
  :mod:`starmix.workflows.density`, :mod:`starmix.workflows.cluster` (each with its
  ``run`` module, whose runner reads as the workflow's steps);
- :mod:`starmix.workflows.survey`: many clusters on Dask;
- :mod:`starmix.workflows.registry`: every workflow named once, with its options, runner,
  default folder and figures; the command line, ``reproduce`` and the API read it;
- :mod:`starmix.workflows.reproduce` and :mod:`starmix.workflows.cli`: the ``starmix``
  command.
"""

# the registry names each runner's workflow for the records its runs write
# (:func:`starmix.workflows.base.workflow_name`): importing any workflow imports it first
from starmix.workflows import registry  # noqa: E402, F401
