"""The cluster-membership workflow (``starmix run cluster``): inputs, fit, detection,
identification, outputs and figures.
"""
