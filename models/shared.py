"""Data, and prior constants derived from data, as shared variables rather than constants.

PyTensor's Numba backend embeds every constant of a graph in the compiled code, so a
model built on new data (another cut, another cluster) was a new function to Numba and
recompiled, about 35 s for pm2d on a 2.4 GHz core, and a constant over 1 MB could not be
cached at all (pm2d from about 31,000 stars, the joint model from about 14,000: those
recompiled on every run). With the star arrays and the data-derived prior centres and
widths as shared variables (inputs of the compiled function, not part of it), one
compiled log-density serves every dataset with the same model and number of components.
"""

from collections.abc import Callable, Mapping

import numpy as np
import pytensor

# A replacement prior: called with the parameter's name inside the model's context, it
# returns the PyMC variable (for example ``lambda name: pm.HalfNormal(name, 0.2)``).
PriorFactory = Callable[[str], object]


def data_tensor(array: np.ndarray, name: str):
    """``array`` (objects on the last axis) as a shared variable; the object axis is left
    unknown, so that the compiled code does not depend on the number of objects."""
    array = np.ascontiguousarray(array, float)
    return pytensor.shared(array, name=name, shape=(*array.shape[:-1], None))


def prior_constant(value, name: str):
    """A data-derived prior parameter (a median, a robust width, a selection radius; any
    units) as a shared variable of fixed shape."""
    value = np.asarray(value, float)
    return pytensor.shared(value, name=name, shape=value.shape)


def check_priors(priors: Mapping[str, PriorFactory] | None, replaceable, model: str) -> dict:
    """``priors`` as a dict, or a ValueError naming any name the model cannot replace."""
    unknown = sorted(set(priors or {}) - set(replaceable))
    if unknown:
        raise ValueError(f"the {model} model has no replaceable prior named "
                         f"{', '.join(map(repr, unknown))}; replaceable: "
                         f"{', '.join(replaceable)}")
    return dict(priors or {})


def prior(name: str, default: PriorFactory, priors: Mapping[str, PriorFactory]):
    """The prior of parameter ``name``: the user's factory in ``priors`` if there is one,
    else ``default``; either is called with the name inside the model's context."""
    return priors.get(name, default)(name)
