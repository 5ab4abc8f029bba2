"""``starmix search``: a blind search for clusters with Bayesian verification
(:mod:`starmix.workflows.search.run`)."""
