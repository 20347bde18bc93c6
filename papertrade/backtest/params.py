"""Strategy parameters from the command line: `--param k=v` and `--grid k=v1,v2,...`.

Values are typed the way a user writes them: `10` is an int, `0.5` a float, `true`/`false`
a bool, anything else a string; the strategy's parameter model then validates and coerces.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

from papertrade.errors import UserError


class ParamSyntaxError(UserError):
    """A `k=v` or `k=v1,v2` argument that does not parse."""


def parse_value(text: str) -> Any:
    """`10` -> 10, `0.5` -> 0.5, `true` -> True, else the stripped string."""
    raw = text.strip()
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, int | float) else raw


def _split(spec: str, option: str) -> tuple[str, str]:
    key, sep, value = spec.partition("=")
    key = key.strip()
    if not sep or not key or not value.strip():
        raise ParamSyntaxError(f"{option} {spec!r}: expected name=value")
    return key, value


def parse_params(specs: Sequence[str]) -> dict[str, Any]:
    """`["fast=10", "slow=30"]` -> {"fast": 10, "slow": 30}; a repeated name is an error."""
    params: dict[str, Any] = {}
    for spec in specs:
        key, value = _split(spec, "--param")
        if key in params:
            raise ParamSyntaxError(f"--param {key} given twice")
        params[key] = parse_value(value)
    return params


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """`["fast=5,10", "slow=30"]` -> {"fast": [5, 10], "slow": [30]}."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, values = _split(spec, "--grid")
        if key in grid:
            raise ParamSyntaxError(f"--grid {key} given twice")
        parts = [v for v in values.split(",")]
        if any(not p.strip() for p in parts):
            raise ParamSyntaxError(f"--grid {spec!r}: empty value in the list")
        grid[key] = list(dict.fromkeys(parse_value(p) for p in parts))
    if not grid:
        raise ParamSyntaxError("give at least one --grid name=v1,v2,...")
    return grid


# A sweep runs one Prefect task per combination; 40,000 made the server refuse the run
MAX_COMBINATIONS = 5000


def expand_grid(grid: dict[str, list[Any]], base: dict[str, Any] | None = None) -> list[dict]:
    """Every combination of the grid's values (the first name varies slowest), each on top
    of `base`, in a deterministic order; at most `MAX_COMBINATIONS`. A name in both is
    refused: the grid's values would silently replace the `--param` one."""
    names = list(grid)
    both = [name for name in names if name in (base or {})]
    if both:
        raise ParamSyntaxError(
            f"{both[0]} is given by --param and by --grid: give it in one of them"
        )
    n = math.prod(len(values) for values in grid.values())
    if n > MAX_COMBINATIONS:
        raise ParamSyntaxError(
            f"the grid has {n:,} combinations, more than the {MAX_COMBINATIONS:,} a sweep runs:"
            " use fewer values"
        )
    return [
        {**(base or {}), **dict(zip(names, combo, strict=True))}
        for combo in itertools.product(*(grid[n] for n in names))
    ]


def buildable(strategy: str, combos: list[dict]) -> tuple[list[dict], list[str]]:
    """The combinations `strategy` accepts, and why it refuses each other one. A grid over
    two windows holds pairs such as fast >= slow that a user means to skip, not to abort
    the sweep for; a grid the strategy refuses whole raises the first refusal instead."""
    from strategies.errors import StrategyParamError
    from strategies.registry import load_strategy

    accepted, refused = [], []
    first: StrategyParamError | None = None
    for params in combos:
        try:
            load_strategy(strategy, params)
        except StrategyParamError as exc:
            first = first or exc
            refused.append(f"{params_key(params)}: {exc}")
        else:
            accepted.append(params)
    if first is not None and not accepted:
        raise first
    return accepted, refused


def params_key(params: dict[str, Any]) -> str:
    """A stable text form of a parameter set (sorted JSON), used as a table key."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))
