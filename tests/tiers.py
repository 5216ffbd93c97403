"""Skipping a test because this machine lacks an isolation tier, or failing it where that must not happen.

On a developer's machine a tier may be missing (no root, no bubblewrap, an
interpreter under /root that ``nobody`` cannot run): those tests skip. In CI
(``NNKIT_REQUIRE_TIERS=1``, which ``.ci/run`` sets) a missing tier is a
failure with the reason, so no tier goes untested without anyone noticing.
"""
from __future__ import annotations

import os

import pytest

REQUIRED = os.environ.get("NNKIT_REQUIRE_TIERS", "") not in ("", "0")


def tier_missing(reason: str) -> None:
    """Skip the calling test for ``reason``, or fail it when tiers are required (CI)."""
    if REQUIRED:
        pytest.fail(f"{reason} (NNKIT_REQUIRE_TIERS is set: every tier must run here)", pytrace=False)
    pytest.skip(reason)
