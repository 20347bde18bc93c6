"""Market data behind one protocol: simulated (default), replay, polygon, alpaca.

This package imports no HTTP library: `polygon`, `alpaca` and `http_client` are imported only
when `factory.make_provider` chooses them. Nothing is imported here, so that the error
types (`market_data.errors`) load without pandas.
"""
