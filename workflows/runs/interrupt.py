"""Stop a run cleanly on Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal or SSH
session), in every phase.

PyMC catches ``KeyboardInterrupt`` during sampling and carries on with the draws it has,
which would turn an interrupted run into a short, unconverged one. Inside
:func:`stop_on_signals` both signals instead raise :class:`RunInterrupted`, which PyMC does
not swallow, and the command exits with 128 + the signal number.

Two things make the stop certain rather than likely:

- **The signal is remembered.** A Python exception raised while C code calls back into
  Python (an LLVM compile, an HDF5 write) can be swallowed ("Exception ignored in ...").
  The handler therefore also records the signal, and :func:`check_signals`, called between
  the steps of a run (:meth:`starmix.workflows.runs.run.Run.step`) and after every file write,
  raises it
  again. A swallowed signal costs at most the rest of the current step.
- **Writes are not interrupted.** Inside :func:`deferred_signals` (every result-file write
  and the final swap of the results folder) the handler only records the signal. A file
  whose write was under way is finished and listed in the run record; the signal is raised
  before the next write starts, or at the end of the step.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_state = {"pending": None, "deferred": 0}


class RunInterrupted(BaseException):
    """A run was stopped by a signal; ``exit_code`` is 130 for SIGINT, 143 for SIGTERM,
    129 for SIGHUP."""

    def __init__(self, signal_number: int):
        self.signal_number = signal_number
        self.signal_name = signal.Signals(signal_number).name
        self.exit_code = 128 + signal_number
        self.step: str | None = None
        self.kept: list[str] = []
        self.record: str | None = None
        super().__init__(f"interrupted by {self.signal_name}")


def _handler(signal_number: int, _frame) -> None:
    if _state["pending"] is None:
        _state["pending"] = signal_number
    if _state["deferred"] == 0:
        raise RunInterrupted(_state["pending"])


def check_signals() -> None:
    """Raise :class:`RunInterrupted` if a signal arrived (also one whose exception was
    swallowed by a C callback). Does nothing inside :func:`deferred_signals`."""
    if _state["pending"] is not None and _state["deferred"] == 0:
        raise RunInterrupted(_state["pending"])


def signal_pending() -> int | None:
    return _state["pending"]


def acknowledge_signal() -> None:
    """The run is handling the interruption (recording it): forget the signal, so that the
    clean-up's own writes are not interrupted again by the same one."""
    _state["pending"] = None


@contextmanager
def deferred_signals(raise_after: bool = True) -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block is done, then raise them (or, with
    ``raise_after=False``, leave them to the next :func:`check_signals`)."""
    _state["deferred"] += 1
    try:
        yield
    finally:
        _state["deferred"] -= 1
    if raise_after:
        check_signals()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`RunInterrupted` inside the block (main thread
    only; elsewhere, as in a notebook's worker thread, the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state["pending"] = None
    previous = {number: signal.signal(number, _handler) for number in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _state["pending"] = None
