"""The warehouse file held by another process: a reader with an open read-only connection,
or a second writer. The interval waits and commits when the file is released, or gives up
after `[warehouse] lock_timeout_seconds` with `WarehouseBusy` and nothing written, and the
retry commits exactly what an undisturbed run would have."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paper_broker.market_data.factory import make_provider
from papertrade.interval import run_interval
from papertrade.settings import Settings
from tests.reliability.support import (
    file_digest,
    fills_signature,
    interval_times,
    ledger_violations,
    settings_for,
    table_counts,
)
from tests.support.accounts import SESSION_OPEN, write_config
from warehouse import connection
from warehouse.errors import WarehouseBusy
from warehouse.locking import Backoff

ROOT = Path(__file__).resolve().parents[2]
T0, T1 = SESSION_OPEN, SESSION_OPEN + timedelta(minutes=1)
WAIT = 60.0  # generous: only ever reached when something is wrong


@contextmanager
def holding(mode: str, db: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding `db` until the block ends (or `release` is called)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.holder", mode, str(db)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        yield child
    finally:
        release(child)


def release(child: subprocess.Popen[str]) -> None:
    """Tell the child to let go and wait for it to exit (idempotent)."""
    assert child.stdin is not None and child.stdout is not None
    if not child.stdin.closed:
        child.stdin.write("go\n")
        child.stdin.close()
    child.wait(timeout=WAIT)
    child.stdout.close()


def _account(tmp_path: Path, timeout: float) -> Settings:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return settings_for(write_config(tmp_path), warehouse={"lock_timeout_seconds": timeout})


def _run(settings: Settings, when: Any) -> dict[str, Any]:
    provider = make_provider(settings.market_data, settings.universe.symbols)
    sender = _Silent()
    return run_interval(settings, when, provider, sender=sender)


class _Silent:
    def send(self, alert: Any) -> Any:
        from papertrade.alerts.sender import SendResult

        return SendResult(ok=True, printed=True)


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = _account(tmp_path_factory.mktemp("reference"), 30.0)
    for when in (T0, T1):
        _run(settings, when)
    return settings.warehouse.path


@pytest.mark.parametrize("mode", ["reader", "writer"])
def test_a_held_file_fails_cleanly_after_the_timeout_and_the_retry_commits(
    tmp_path: Path, reference_db: Path, mode: str
) -> None:
    settings = _account(tmp_path, timeout=0.3)
    db = settings.warehouse.path
    _run(settings, T0)
    before = (file_digest(db), table_counts(db))

    with holding(mode, db):
        with pytest.raises(WarehouseBusy, match="busy"):
            _run(settings, T1)
        during = file_digest(db)
    after = table_counts(db)
    retried = _run(settings, T1)

    assert (during, after) == before, "nothing written while the file was held"
    assert retried["status"] == "committed"
    assert interval_times(db, "paper") == interval_times(reference_db, "paper")
    assert fills_signature(db, "paper") == fills_signature(reference_db, "paper")
    assert ledger_violations(db, "paper", settings.account.initial_cash) == []


@pytest.mark.parametrize("mode", ["reader", "writer"])
def test_the_interval_waits_for_the_file_and_commits_when_released(
    tmp_path: Path, reference_db: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _account(tmp_path, timeout=WAIT)
    db = settings.warehouse.path
    _run(settings, T0)
    waiting = threading.Event()

    class SignallingBackoff(Backoff):
        def sleep(self) -> bool:
            waiting.set()  # the interval found the file taken and is backing off
            return super().sleep()

    monkeypatch.setattr(connection, "Backoff", SignallingBackoff)
    outcome: dict[str, Any] = {}

    def interval_thread() -> None:
        try:
            outcome["summary"] = _run(settings, T1)
        except BaseException as exc:  # surfaced by the assertion below
            outcome["error"] = exc

    with holding(mode, db) as child:
        worker = threading.Thread(target=interval_thread, daemon=True)
        worker.start()
        assert waiting.wait(WAIT), "the interval never waited for the held file"
        assert worker.is_alive(), "nothing commits while the file is held"
        release(child)
        worker.join(WAIT)

    assert not worker.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"]["status"] == "committed"
    assert fills_signature(db, "paper") == fills_signature(reference_db, "paper")
    assert ledger_violations(db, "paper", settings.account.initial_cash) == []


_READ_ONCE = (
    "import sys\n"
    "from warehouse.connection import connect\n"
    "with connect(sys.argv[1], read_only=True, timeout=float(sys.argv[2])) as conn:\n"
    "    print(conn.execute('SELECT count(*) FROM intervals').fetchone()[0])\n"
)


class _ProviderThatWatchesTheFile:
    """The simulated market, but each call first lets a reader in another process query
    the warehouse, the way `papertrade sql` does while a live provider takes its time."""

    def __init__(self, settings: Settings, patience: float) -> None:
        self._inner = make_provider(settings.market_data, settings.universe.symbols)
        self._db = settings.warehouse.path
        self._patience = patience
        self.readers: list[tuple[str, subprocess.CompletedProcess[str]]] = []

    def _reader(self, during: str) -> None:
        done = subprocess.run(
            [sys.executable, "-c", _READ_ONCE, str(self._db), str(self._patience)],
            cwd=ROOT, capture_output=True, text=True, timeout=WAIT,
        )  # fmt: skip
        self.readers.append((during, done))

    def quotes(self, *args: Any, **kwargs: Any) -> Any:
        self._reader("quotes")
        return self._inner.quotes(*args, **kwargs)

    def bars(self, *args: Any, **kwargs: Any) -> Any:
        self._reader("bars")
        return self._inner.bars(*args, **kwargs)

    def close(self) -> None:
        self._inner.close()


def test_the_file_is_free_while_the_provider_is_called(tmp_path: Path) -> None:
    settings = _account(tmp_path, timeout=WAIT)
    provider = _ProviderThatWatchesTheFile(settings, patience=1.0)

    first = run_interval(settings, T0, provider, sender=_Silent())  # warm-up bars, then quotes
    second = run_interval(settings, T1, provider, sender=_Silent())

    assert [s["status"] for s in (first, second)] == ["committed", "committed"]
    assert [during for during, _ in provider.readers] == ["bars", "quotes", "quotes"]
    outcomes = [(done.returncode, done.stdout.strip(), done.stderr) for _, done in provider.readers]
    assert [(rc, out) for rc, out, _ in outcomes] == [(0, "0"), (0, "0"), (0, "1")], outcomes
