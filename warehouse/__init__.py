"""The DuckDB warehouse: schema and migrations, lock-aware connections, atomic interval
commits, broker state restore, analytics views and read-only SQL.

Modules are imported by what they hold (`warehouse.connection`, `warehouse.commit`, ...);
importing this package does no work and does not import DuckDB.
"""
