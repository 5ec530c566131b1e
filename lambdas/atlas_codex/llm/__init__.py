"""Models: the catalogue and its prices, offline token counting, the router, budgets.

Nothing here imports the ``openai`` SDK at module level: only the path that calls a model
pays its import time.
"""
