"""A child process that holds the warehouse file until told to let go.

    python -m tests.reliability.holder reader|writer DB

`reader` opens a plain read-only DuckDB connection (as a notebook would), `writer` a
cooperating writer through `warehouse.connection.connect` (as `papertrade kill-switch`
would). It prints `held` once it holds the file and releases it when a line arrives on
stdin, so the parent synchronises on pipes, never on sleeps.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    mode, db = argv[0], Path(argv[1])
    if mode == "reader":
        import duckdb

        conn = duckdb.connect(str(db), read_only=True)
        conn.execute("SELECT count(*) FROM intervals").fetchall()
        print("held", flush=True)
        sys.stdin.readline()
        conn.close()
    elif mode == "writer":
        from warehouse.connection import connect

        with connect(db, timeout=30) as conn:
            conn.execute("SELECT count(*) FROM intervals").fetchall()
            print("held", flush=True)
            sys.stdin.readline()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("released", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
