"""Loopback fakes of the outside services, for integration and reliability tests.

    with FakePolygon() as fake:                 # a threaded HTTP server on 127.0.0.1:<free port>
        fake.set_quote("AAPL", bid=10.0, ask=10.01, ts=as_of)
        fake.enqueue(FakeResponse(429, headers={"Retry-After": "2"}))   # next request only
        provider = PolygonProvider(fake.base_url, env={"POLYGON_API_KEY": "k"})
        ...
        fake.requests                           # every request seen, with path, query, headers

`FakeHttpServer` is the generic part: scripted responses first (FIFO, optionally per path
prefix), then the default handler.
"""

from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.http_server import FakeHttpServer, FakeResponse, RecordedRequest
from tests.fakes.polygon import FakePolygon

__all__ = ["FakeAlpaca", "FakeHttpServer", "FakePolygon", "FakeResponse", "RecordedRequest"]
