"""Bar lengths: one spelling for users (`"1Min"`, `"5Min"`, `"1Hour"`, `"1Day"`, Alpaca's
style) translated to each vendor's."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

_UNITS = {
    "min": ("Min", "minute", 60),
    "t": ("Min", "minute", 60),
    "minute": ("Min", "minute", 60),
    "hour": ("Hour", "hour", 3600),
    "h": ("Hour", "hour", 3600),
    "day": ("Day", "day", 86_400),
    "d": ("Day", "day", 86_400),
}
_PATTERN = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A bar length of `multiplier` units (minute, hour or day)."""

    multiplier: int
    unit: str  # "minute" | "hour" | "day" (Polygon's timespan names)

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """`"1Min"`, `"15min"`, `"1Hour"`, `"1Day"`, `"1d"`... Raises `ValueError` otherwise."""
        match = _PATTERN.match(text)
        unit = _UNITS.get(match.group(2).lower()) if match else None
        if match is None or unit is None or int(match.group(1)) < 1:
            raise ValueError(f"unknown bar timeframe {text!r}; use e.g. 1Min, 5Min, 1Hour, 1Day")
        return cls(int(match.group(1)), unit[1])

    @property
    def seconds(self) -> int:
        return self.multiplier * next(s for _, u, s in _UNITS.values() if u == self.unit)

    @property
    def delta(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.seconds)

    @property
    def alpaca(self) -> str:
        return f"{self.multiplier}{next(a for a, u, _ in _UNITS.values() if u == self.unit)}"
