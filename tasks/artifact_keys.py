"""Prefect artifact keys of an account: lowercase letters, digits and dashes, as Prefect
requires, and one key per account.

Lowercasing and mapping `_` and `.` to `-` alone sends `team_a`, `team.a`, `team-a` and
`Team-A` to one key, so each account's dashboard artifact would show whichever of them ran
last. An id the mapping changes gets a short hash of the exact id; an id already in the
key alphabet (`paper`, `demo`) keeps its key as it is."""

from __future__ import annotations

import hashlib
import re


def account_key(account_id: str) -> str:
    """The artifact key prefix of `account_id` (see the module docstring)."""
    slug = re.sub(r"[^a-z0-9-]", "-", account_id.lower())
    if slug == account_id:
        return slug
    digest = hashlib.sha256(account_id.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}"
