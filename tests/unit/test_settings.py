from __future__ import annotations

from pathlib import Path

import pytest

from papertrade.settings import ConfigError, Provider, load_settings


def test_defaults_work_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.market_data.provider is Provider.SIMULATED
    assert settings.account.id == "paper"
    assert settings.warehouse.path == Path("papertrade.duckdb")


def test_toml_then_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text("[account]\ninitial_cash = 5000\n[risk]\nmax_order_notional = 100\n")
    monkeypatch.setenv("PAPERTRADE_RISK__MAX_ORDER_NOTIONAL", "250")
    settings = load_settings(cfg)
    assert settings.account.initial_cash == 5000
    assert settings.risk.max_order_notional == 250


def test_db_option_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAPERTRADE_DB", "env.duckdb")
    assert load_settings().warehouse.path == Path("env.duckdb")
    assert load_settings(db=Path("x.duckdb")).warehouse.path == Path("x.duckdb")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[risk]\nmax_order_notional = -1\n", "risk.max_order_notional"),
        ("[account]\ninitial_cash = 'lots'\n", "account.initial_cash"),
        ("[market_data]\nprovider = 'bloomberg'\n", "market_data.provider"),
        ("[broker]\nno_such_key = 1\n", "broker.no_such_key"),
        ("[account]\ninitial_cash = inf\n", "account.initial_cash"),
        ("[risk]\nmax_order_notional = nan\n", "risk.max_order_notional"),
        # intervals that do not divide 30 minutes miss the :30 open or the close
        ("[market_data]\ninterval_seconds = 3600\n", "market_data.interval_seconds"),
        ("[market_data]\ninterval_seconds = 7\n", "market_data.interval_seconds"),
        # the id names the run lock file and the reports directory
        (f"[account]\nid = '{'a' * 65}'\n", "account.id"),
        ("[account]\nid = '..'\n", "account.id"),
        ("[account]\nid = 'my acct'\n", "account.id"),
    ],
)
def test_bad_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        load_settings(cfg)
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_malformed_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[account\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(cfg)


_JSON = "a list or table must be JSON"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PAPERTRADE_RISKK__MAX_ORDER_NOTIONAL", "5", "no setting section 'riskk'"),
        ("PAPERTRADE_UNIVERSE__SYMBOLS", "AAPL,MSFT", _JSON),
        ("PAPERTRADE_STRATEGY__PARAMS", "fast=5", _JSON),
        ("PAPERTRADE_ACCOUNT__INITIAL_CASH", "inf", "Input should be a finite number"),
    ],
)
def test_a_bad_environment_override_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    named = "account.initial_cash" if name.endswith("INITIAL_CASH") else name
    assert str(info.value).startswith(f"{named}: {message}") or (
        str(info.value).startswith(f"config key {named}: {message}")
    )
    assert "\n" not in str(info.value)


def test_a_config_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file is a directory"):
        load_settings(tmp_path)


def test_an_environment_table_replaces_the_files_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README: any setting "can be overridden" by its variable, a table written as JSON.
    # The file's parameters of another strategy must not stay beside the variable's.
    cfg = tmp_path / "p.toml"
    cfg.write_text(
        '[strategy]\nname = "mean_reversion"\n'
        "params = { lookback = 20, entry_z = 2.0, exit_z = 0.5, qty = 100 }\n"
    )
    monkeypatch.setenv("PAPERTRADE_STRATEGY__NAME", "sma_crossover")
    monkeypatch.setenv("PAPERTRADE_STRATEGY__PARAMS", '{"fast": 5, "slow": 20}')
    strategy = load_settings(cfg).strategy
    assert strategy.name == "sma_crossover"
    assert strategy.params == {"fast": 5, "slow": 20}


def test_an_environment_key_of_a_table_changes_only_that_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text("[strategy]\nparams = { fast = 10, slow = 30 }\n")
    monkeypatch.setenv("PAPERTRADE_STRATEGY__PARAMS__FAST", "5")
    assert load_settings(cfg).strategy.params == {"fast": "5", "slow": 30}
