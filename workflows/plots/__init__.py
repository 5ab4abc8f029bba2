"""Figures shared by the workflows: corner and trace plots, predictive checks, the PGMs."""
