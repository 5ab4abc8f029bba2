"""The density workflows (``starmix run density`` and ``starmix run ages``): fit, baselines,
comparison and figures.
"""
