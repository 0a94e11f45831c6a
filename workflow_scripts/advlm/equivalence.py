"""The fourth verdict: no effect of at least the smallest effect of interest (``claims.statements.<claim>.delta``).

An inconclusive claim says nothing about whether an effect of the size the literature reports is there. Where the
claim's Holm-corrected interval (the interval at the row's Holm level, ``advlm.claims.finish_family``) lies
strictly inside (-delta, +delta) and contains 0, an effect of delta or more in either direction is ruled out at
the family-wise level: the interval-inclusion form of two one-sided tests (Schuirmann 1987; at level 1 - a the
two-sided interval is conservative for TOST at a/2 per side). A significant effect keeps its verdict (supported,
contradicted) even where it is smaller than delta; an interval touching or crossing +-delta stays inconclusive.
"""

from __future__ import annotations

import math

NO_EFFECT = "no effect ≥ δ"


def with_equivalence(verdict: str, low: float, high: float, delta: float | None) -> str:
    """``verdict`` (supported, contradicted, inconclusive), or :data:`NO_EFFECT` where an inconclusive row's
    corrected interval [low, high] lies strictly inside (-delta, +delta); a row without delta keeps its verdict."""
    if verdict != "inconclusive" or delta is None or not (math.isfinite(low) and math.isfinite(high)):
        return verdict
    if delta <= 0:
        raise ValueError(f"delta must be positive, got {delta}")
    return NO_EFFECT if -delta < low and high < delta else verdict
