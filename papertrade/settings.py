"""Settings from `papertrade.toml`, overridden by `PAPERTRADE_...` variables.

Every default works offline: the simulated market, a local DuckDB file, Slack printed to the
console. Nested keys in the environment use a double underscore:
`PAPERTRADE_RISK__MAX_ORDER_NOTIONAL=50000`. Secrets (API keys, Slack tokens) are not settings:
they are read from their own variables when a provider or notifier is built, never stored.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from papertrade.errors import UserError

DEFAULT_CONFIG_FILE = Path("papertrade.toml")
ENV_PREFIX = "PAPERTRADE_"
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
DB_ENV = f"{ENV_PREFIX}DB"

DEFAULT_SYMBOLS = [
    "AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "TSLA", "JPM", "V", "JNJ",
    "WMT", "PG", "XOM", "UNH", "HD", "MA", "BAC", "KO", "PEP", "DIS",
]  # fmt: skip


class ConfigError(UserError):
    """A bad config value; the message names the key and fits on one line."""


class _Section(BaseModel):
    # inf and NaN pass the bounds of a field (`gt=0`), then poison every sum they enter
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class AccountSettings(_Section):
    # The id names files: `<db>.<id>.run.lock` and `reports/<id>/`. A long one exceeds the
    # file system's 255-byte names (the interval then failed blaming the warehouse), and
    # `..` would put the reports in the directory above `reports_dir`.
    id: str = Field("paper", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    initial_cash: float = Field(100_000.0, gt=0)
    # 1.0 is a cash account; 2.0 is Reg T margin, 4.0 intraday margin
    margin_multiplier: float = Field(1.0, ge=1.0, le=10.0)
    allow_short: bool = False


class UniverseSettings(_Section):
    symbols: list[str] = Field(default_factory=lambda: list(DEFAULT_SYMBOLS), min_length=1)

    @field_validator("symbols")
    @classmethod
    def _upper_unique(cls, value: list[str]) -> list[str]:
        cleaned = [s.strip().upper() for s in value]
        if any(not s for s in cleaned):
            raise ValueError("symbols must not be empty strings")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("symbols must be unique")
        return cleaned


class Provider(StrEnum):
    SIMULATED = "simulated"
    REPLAY = "replay"
    POLYGON = "polygon"
    ALPACA = "alpaca"


class MarketDataSettings(_Section):
    provider: Provider = Provider.SIMULATED
    seed: int = 42
    calendar: str = "XNYS"
    interval_seconds: int = Field(60, ge=1, le=1_800)
    history_bars: int = Field(100, ge=1, le=100_000)
    cache_seconds: float = Field(1.0, ge=0)
    staleness_seconds: float = Field(120.0, gt=0)
    max_spread_bps: float = Field(200.0, gt=0)
    max_jump_pct: float = Field(0.25, gt=0)
    replay_path: Path | None = None
    polygon_base_url: str = "https://api.polygon.io"
    alpaca_base_url: str = "https://data.alpaca.markets"
    alpaca_feed: str = Field("iex", pattern=r"^(iex|sip)$")
    timeout_seconds: float = Field(10.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)

    @field_validator("interval_seconds")
    @classmethod
    def _divides_half_hour(cls, value: int) -> int:
        # The grid is anchored at midnight UTC; NYSE opens at :30 and closes on the hour, so
        # only a step that divides 30 minutes starts an interval at every open and ends the
        # last one at the close (3600 would floor 09:45 to 09:00, before the open).
        if 1_800 % value:
            raise ValueError("must divide 1800 (30 minutes), e.g. 60, 300, 900 or 1800")
        return value


class StrategySettings(_Section):
    name: str = "sma_crossover"
    params: dict[str, Any] = Field(default_factory=dict)


class SlippageModelName(StrEnum):
    NONE = "none"
    FIXED_BPS = "fixed_bps"
    SPREAD_FRACTION = "spread_fraction"
    VOLUME_IMPACT = "volume_impact"


class CommissionModelName(StrEnum):
    ZERO = "zero"
    PER_SHARE = "per_share"
    PER_ORDER = "per_order"
    PERCENT = "percent"


class MarkPrice(StrEnum):
    MID = "mid"
    LAST = "last"


class BrokerSettings(_Section):
    slippage_model: SlippageModelName = SlippageModelName.FIXED_BPS
    slippage_bps: float = Field(1.0, ge=0, le=1_000)
    spread_fraction: float = Field(0.5, ge=0, le=10)
    impact_coefficient: float = Field(0.1, ge=0)
    commission_model: CommissionModelName = CommissionModelName.PER_SHARE
    commission_per_share: float = Field(0.005, ge=0)
    commission_min: float = Field(1.0, ge=0)
    commission_max_pct: float = Field(0.01, ge=0, le=1)
    commission_per_order: float = Field(1.0, ge=0)
    commission_pct: float = Field(0.001, ge=0, le=1)
    max_volume_share: float = Field(0.1, gt=0, le=1)
    tick_size: float = Field(0.01, gt=0)
    mark_price: MarkPrice = MarkPrice.MID


class GuardAction(StrEnum):
    REDUCING = "reducing"
    HALTED = "halted"


class RiskSettings(_Section):
    max_order_quantity: float = Field(10_000, gt=0)
    max_order_notional: float = Field(50_000, gt=0)
    max_position_notional: float = Field(100_000, gt=0)
    max_gross_exposure: float = Field(200_000, gt=0)
    max_net_exposure: float = Field(150_000, gt=0)
    max_open_orders: int = Field(1_000, ge=1)
    max_orders_per_interval: int = Field(500, ge=1)
    restricted_symbols: list[str] = Field(default_factory=list)
    price_collar_pct: float = Field(0.05, gt=0, le=1)
    daily_loss_limit_pct: float = Field(0.05, gt=0, le=1)
    daily_loss_action: GuardAction = GuardAction.REDUCING
    max_drawdown_pct: float = Field(0.20, gt=0, le=1)
    max_drawdown_action: GuardAction = GuardAction.HALTED
    flatten_on_halt: bool = False


class AlertLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class SlackSettings(_Section):
    channel: str = "#papertrade"
    base_url: str | None = None
    min_level: AlertLevel = AlertLevel.INFO
    send_fills: bool = True
    send_risk: bool = True
    send_data_quality: bool = True
    send_summary: bool = True
    timeout_seconds: float = Field(10.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    # how long one delivery may post: it runs inside the interval's flow run, and the
    # deployment cancels the next interval while one still runs
    max_delivery_seconds: float = Field(20.0, gt=0)


class WarehouseSettings(_Section):
    path: Path = Path("papertrade.duckdb")
    lock_timeout_seconds: float = Field(30.0, ge=0)
    reports_dir: Path = Path("reports")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    account: AccountSettings = AccountSettings()
    universe: UniverseSettings = UniverseSettings()
    market_data: MarketDataSettings = MarketDataSettings()
    strategy: StrategySettings = StrategySettings()
    broker: BrokerSettings = BrokerSettings()
    risk: RiskSettings = RiskSettings()
    slack: SlackSettings = SlackSettings()
    warehouse: WarehouseSettings = WarehouseSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _TOML_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(_FileSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


class _FileSource(TomlConfigSettingsSource):
    """The config file, less the keys a variable `PAPERTRADE_<SECTION>__<KEY>` sets whole.

    pydantic-settings merges a table from the environment into the file's table, so
    `PAPERTRADE_STRATEGY__PARAMS` kept the file's parameters beside its own (a file's
    `lookback` beside the variable's `fast` and `slow`, refused as unknown to
    sma_crossover, which also broke `papertrade demo` next to such a file), and no variable
    could drop a parameter. A variable naming one key inside the table
    (`PAPERTRADE_STRATEGY__PARAMS__FAST`) still changes only that key."""

    def __call__(self) -> dict[str, Any]:
        replaced = _keys_set_by_env()
        return {
            section: (
                {k: v for k, v in values.items() if (section, k) not in replaced}
                if isinstance(values, dict)
                else values
            )
            for section, values in super().__call__().items()
        }


def _keys_set_by_env() -> set[tuple[str, str]]:
    """(section, key) of every variable that sets one setting whole (variable names are
    not case-sensitive, as pydantic-settings reads them)."""
    keys = set()
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX):
            parts = name[len(ENV_PREFIX) :].lower().split("__")
            if len(parts) == 2:
                keys.add((parts[0], parts[1]))
    return keys


# The TOML path is chosen per load; pydantic-settings reads sources from the class, so the
# loader hands the path over here for the duration of one `load_settings` call.
_TOML_FILE: dict[str, Path | None] = {}

# Env vars that are read elsewhere and must not be mistaken for settings.
_NOT_SETTINGS = {CONFIG_ENV, DB_ENV}


def load_settings(config: Path | None = None, db: Path | None = None) -> Settings:
    """Load settings: explicit `config`, else `$PAPERTRADE_CONFIG`, else `./papertrade.toml`
    when it exists, else the embedded defaults. `db` (or `$PAPERTRADE_DB`) overrides
    `[warehouse] path`. Raises `ConfigError` naming the bad key."""
    explicit = config is not None or CONFIG_ENV in os.environ
    path = config if config is not None else Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE))
    if explicit and path.is_dir():
        raise ConfigError(f"config file is a directory: {path}")
    if explicit and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    _TOML_FILE["path"] = path if path.is_file() else None
    _check_env_sections()
    saved = {k: os.environ.pop(k) for k in _NOT_SETTINGS if k in os.environ}
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    except SettingsError as exc:  # an override that is not JSON where a list or table is
        raise ConfigError(_env_json_error(exc)) from None
    except (ValueError, OSError) as exc:  # malformed TOML
        reason = str(exc)
        if _has_bom(path):  # Notepad's "UTF-8" writes one; TOML forbids it
            reason = "it starts with a byte-order mark: save it as UTF-8 without BOM"
        raise ConfigError(f"cannot read config {path}: {reason}".replace("\n", " ")) from None
    finally:
        os.environ.update(saved)
        _TOML_FILE.clear()
    db_path = db if db is not None else (Path(saved[DB_ENV]) if DB_ENV in saved else None)
    if db_path is not None:
        settings = settings.model_copy(
            update={"warehouse": settings.warehouse.model_copy(update={"path": db_path})}
        )
    return settings


def _has_bom(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(3) == b"\xef\xbb\xbf"
    except OSError:
        return False


def _check_env_sections() -> None:
    """A variable naming no section would be ignored without a word; a typo in a key of a
    known section is refused by the section itself."""
    for name in sorted(os.environ):
        if name.startswith(ENV_PREFIX) and name not in _NOT_SETTINGS:
            section = name[len(ENV_PREFIX) :].split("__")[0].lower()
            if section not in Settings.model_fields:
                known = ", ".join(Settings.model_fields)
                raise ConfigError(f"{name}: no setting section {section!r} (sections: {known})")


def _env_json_error(exc: SettingsError) -> str:
    found = re.search(r'field "(\w+)"', str(exc))
    section = found.group(1) if found else ""
    names = sorted(n for n in os.environ if n.startswith(f"{ENV_PREFIX}{section.upper()}__"))
    return (
        f"{' or '.join(names) or 'a ' + ENV_PREFIX + ' variable'}: a list or table must be JSON, "
        """e.g. PAPERTRADE_UNIVERSE__SYMBOLS='["AAPL", "MSFT"]'"""
    )


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    more = len(exc.errors()) - 1
    suffix = f" (+{more} more)" if more else ""
    return f"config key {key}: {first['msg']}{shown}{suffix}"
