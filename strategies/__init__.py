"""Strategies: market history + portfolio -> order intents. Pure: no Prefect, DuckDB or HTTP.

See `strategies.base` for the two-step interface (`prepare` once, `decide` per bar) shared
by paper trading and backtests, and `strategies.registry.load_strategy` to build one by name.
"""
