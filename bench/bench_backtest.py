"""Backtest benchmark: `sma_crossover` (fast 10, slow 30) on 500 symbols x 2,520 daily bars.

Prints one JSON object: the engine's bar-symbols per second (with and without the
RiskGuard), a pure numpy computation of the same crossover signals as the baseline and the
engine's ratio to it (the figure that holds on a shared machine), and the whole
`papertrade backtest --json` process on a Parquet file, `--no-risk` and the default
`--risk`, each run RUNS times on a fresh warehouse (median and every wall time), one re-run
that replaces a stored run, and the children's peak RSS.
Goals: >= 1e6 bar-symbols/s, < 3 s, < 1 GiB.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_SYM, N_BARS, FAST, SLOW = 500, 2_520, 10, 30
RUNS = 3


def bars(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (N_BARS, N_SYM)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, close.shape))
    ts = pd.date_range("2015-01-02 21:00", periods=N_BARS, freq="B", tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": np.repeat(ts, N_SYM),
            "symbol": np.tile([f"S{i:04d}" for i in range(N_SYM)], N_BARS),
            "open": open_.ravel(),
            "high": (np.maximum(open_, close) * 1.01).ravel(),
            "low": (np.minimum(open_, close) * 0.99).ravel(),
            "close": close.ravel(),
            "volume": np.full(close.size, 1e6),
        }
    )


def numpy_signals(close: np.ndarray) -> int:
    """The baseline: SMA crossover signals for the whole panel with cumulative sums."""
    c = np.cumsum(np.vstack([np.zeros((1, close.shape[1])), close]), axis=0)
    fast = np.full(close.shape, np.nan)
    slow = np.full(close.shape, np.nan)
    fast[FAST - 1 :] = (c[FAST:] - c[:-FAST]) / FAST
    slow[SLOW - 1 :] = (c[SLOW:] - c[:-SLOW]) / SLOW
    up = (fast[:-1] <= slow[:-1]) & (fast[1:] > slow[1:])
    down = (fast[:-1] >= slow[:-1]) & (fast[1:] < slow[1:])
    return int(up.sum() + down.sum())


def timings(n: int, fn) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    from papertrade.backtest.bars import panel_from_frame
    from papertrade.backtest.command import BacktestRequest, engine_config
    from papertrade.backtest.engine import run_backtest
    from papertrade.settings import load_settings
    from strategies.registry import load_strategy

    frame = bars()
    panel = panel_from_frame(frame)
    strategy = load_strategy("sma_crossover", {"fast": FAST, "slow": SLOW})
    settings = load_settings()
    cells = N_SYM * N_BARS
    out: dict[str, object] = {"symbols": N_SYM, "bars": N_BARS, "runs": RUNS}
    baseline = statistics.median(timings(5, lambda: numpy_signals(panel.close)))
    out["numpy_signals_s"] = round(baseline, 4)
    for risk in (False, True):
        cfg = engine_config(settings, BacktestRequest(Path("-"), "sma_crossover", risk=risk), "b")
        result = run_backtest(panel, strategy, cfg)
        elapsed = statistics.median(
            timings(RUNS, lambda cfg=cfg: run_backtest(panel, strategy, cfg))
        )
        tag = "engine_risk" if risk else "engine"
        out[f"{tag}_s"] = round(elapsed, 4)
        out[f"{tag}_bar_symbols_per_s"] = round(cells / elapsed)
        out[f"{tag}_ratio_to_numpy"] = round(elapsed / baseline, 1)
        out[f"{tag}_orders"] = len(result.orders)
        out[f"{tag}_fills"] = len(result.fills)
        out[f"{tag}_risk_rejections"] = result.risk_rejections
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bars.parquet"
        frame.to_parquet(path)
        exe = str(Path(sys.executable).parent / "papertrade")

        def command(flag: str, db: Path) -> float:
            cmd = [exe, "backtest", "--bars", str(path), "--strategy", "sma_crossover",
                   "--param", f"fast={FAST}", "--param", f"slow={SLOW}", "--json", flag,
                   "--db", str(db)]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            return time.perf_counter() - t0

        for flag in ("--no-risk", "--risk"):
            tag = "command" if flag == "--no-risk" else "command_risk"
            walls = [command(flag, Path(tmp) / f"{tag}{k}.duckdb") for k in range(RUNS)]
            out[f"{tag}_wall_s"] = round(statistics.median(walls), 3)
            out[f"{tag}_wall_runs_s"] = [round(w, 3) for w in walls]
        # a re-run under the same account id deletes the stored run (24k orders without the
        # guard) before writing the new one, in one transaction
        out["command_risk_replacing_no_risk_run_wall_s"] = round(
            command("--risk", Path(tmp) / "command0.duckdb"), 3
        )
        rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out["command_peak_rss_mib"] = round(rss_kib / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
