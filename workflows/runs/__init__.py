"""Run bookkeeping: options, the run record, the results folder, atomic files and interrupts."""
