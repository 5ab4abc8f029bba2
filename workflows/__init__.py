"""starmix workflows: load data, build a model, sample, gate, compute membership, save, plot.

Each step is a small function that can be called from Python; ``workflows.cli`` strings
them together as the ``starmix`` command.
"""
