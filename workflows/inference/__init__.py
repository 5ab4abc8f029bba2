"""Model-agnostic inference: sampling (nutpie, PyMC, JAX), the convergence gate, PSIS-LOO
and its Laplace shortcut, membership probabilities, predictive checks, summaries and
recovery scores.
"""
