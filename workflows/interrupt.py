"""Stop a run cleanly on Ctrl-C (SIGINT) or SIGTERM.

PyMC catches ``KeyboardInterrupt`` during sampling and carries on with the draws it has,
which would turn an interrupted run into a short, unconverged one. Inside
:func:`stop_on_signals` both signals instead raise :class:`RunInterrupted`, which PyMC does not
swallow: its sampler processes are shut down, the temporary file of any write in progress is
removed (see :mod:`workflows.results`), and the command exits with 128 + the signal number.
"""

import signal
from collections.abc import Iterator
from contextlib import contextmanager

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(BaseException):
    """A run was stopped by a signal; ``exit_code`` is 130 for SIGINT, 143 for SIGTERM."""

    def __init__(self, signal_number: int):
        self.signal_name = signal.Signals(signal_number).name
        self.exit_code = 128 + signal_number
        self.step: str | None = None
        self.kept: list[str] = []
        super().__init__(f"interrupted by {self.signal_name}")


def _raise_interrupted(signal_number: int, _frame) -> None:
    raise RunInterrupted(signal_number)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`RunInterrupted` inside the block (main thread)."""
    previous = {number: signal.signal(number, _raise_interrupted) for number in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
