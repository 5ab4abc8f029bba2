"""Surveys of many clusters on Dask (``starmix survey``): tasks, the survey table and its
figures.
"""
