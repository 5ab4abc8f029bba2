"""PyTensor functions compiled by Numba that release the GIL, cached on disk between runs.

PyTensor's Numba linker keeps each compiled graph in its on-disk cache, but its functions
hold Python's interpreter lock while they run, so threads calling them take turns. The
linker here compiles the same graph with ``nogil=True``: nutpie's chains (threads) and the
per-draw membership pass (:mod:`starmix.workflows.inference.membership`) then use both cores.
"""

from collections.abc import Callable, Sequence

from pymc.pytensorf import compile as compile_pymc
from pytensor.compile.mode import Mode, get_mode
from pytensor.link.numba.cache import compile_numba_function_src
from pytensor.link.numba.dispatch.basic import numba_njit
from pytensor.link.numba.linker import NumbaLinker


class NogilNumbaLinker(NumbaLinker):
    """PyTensor's Numba linker whose compiled function releases the GIL while it runs.

    The outer function gets its own cache entry (key suffix ``_nogil`` and this module's
    name), so it never shares Numba's on-disk cache with the ordinary GIL-holding function
    of the same graph, nor with an entry written when this module had another name (Numba
    imports the module named in a cached entry to rebuild it).
    """

    def jit_compile(self, fn_and_cache):
        function, cache_key = fn_and_cache
        if cache_key is None:
            return numba_njit(function.py_func, final_function=True, nogil=True)
        outer = compile_numba_function_src(
            src="def graph_nogil(*args): return graph(*args)",
            function_name="graph_nogil",
            global_env={"graph": function, "__name__": __name__},
            cache_key=f"{cache_key}_nogil_{__name__}",
        )
        return numba_njit(outer, final_function=True, cache=True, nogil=True)


def nogil_numba_mode() -> Mode:
    return Mode(linker=NogilNumbaLinker(), optimizer=get_mode("NUMBA").provided_optimizer)


def thread_safe(function) -> Callable:
    """The compiled core of a PyTensor function built with :func:`nogil_numba_mode`, as a
    plain callable of its explicit inputs: no shared storage, so threads may call it at
    once (PyTensor's ``Function.__call__`` reuses its input and output buffers)."""
    jitted = function.vm.jit_fn
    shared = tuple(variable.get_value() for variable in function.get_shared())

    def call(*inputs):
        return jitted(*inputs, *shared)

    return call


def compile_nogil(inputs: Sequence, outputs: Sequence) -> Callable:
    """``outputs`` as a thread-safe, GIL-free function of ``inputs`` (compiled as PyMC
    compiles, like ``model.compile_fn``); returns a tuple of arrays."""
    function = compile_pymc(list(inputs), list(outputs), mode=nogil_numba_mode(),
                            on_unused_input="ignore")
    return thread_safe(function)
