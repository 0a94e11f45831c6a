"""Invariants of the claims' statistics (advlm.stats), checked by hypothesis on generated seeds and examples:
relabelling and shuffling change nothing, swapping the groups flips the effect and its interval, a shift of the
metric leaves a difference alone and a scale scales it, Holm never lowers a p-value and keeps their order, and an
interval leaves the metric's range only where the row says why."""

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from advlm import claims, stats

# Derandomized: the same examples on every run, so that a failure (or a mutant's survival) can be reproduced;
# `make mutation` runs fewer (HYPOTHESIS_PROFILE=mutation), each mutant being a run of its own.
settings.register_profile("default", max_examples=40, deadline=None, derandomize=True, database=None)
settings.register_profile("mutation", max_examples=12, deadline=None, derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
CLAIMS_TABLES = max(5, settings.default.max_examples // 3)  # a claims table each: slower
ALPHA = 0.05


@st.composite
def per_example_outcomes(draw, min_seeds=2):
    """Per seed, the outcomes (0/1, or rates) of a treatment and a control model on a set of example ids that may
    differ by seed (an attack's sample, the examples each seed's models got right)."""
    seeds = draw(st.integers(min_seeds, 5))
    pool = draw(st.integers(4, 30))
    binary = draw(st.booleans())
    value = st.sampled_from([0.0, 1.0]) if binary else st.floats(0, 1, allow_nan=False)
    out = []
    for _ in range(seeds):
        ids = draw(st.lists(st.integers(0, pool - 1), min_size=2, max_size=pool, unique=True))
        treated = draw(st.lists(value, min_size=len(ids), max_size=len(ids)))
        control = draw(st.lists(value, min_size=len(ids), max_size=len(ids)))
        out.append((ids, np.array(treated), np.array(control)))
    return out


def differences_of(outcomes, label=str, order=None) -> list[stats.SeedDifference]:
    """Each seed's difference, its examples named by ``label`` and listed in ``order`` (a permutation per seed)."""
    out = []
    for seed, (ids, treated, control) in enumerate(outcomes, start=1):
        index = np.arange(len(ids)) if order is None else order[seed - 1]
        d = pd.Series((treated - control)[index], [label(ids[i]) for i in index])
        out.append(stats.SeedDifference(seed, float(d.mean()), len(d), (d,)))
    return out


def numbers(found: stats.Estimate) -> tuple:
    return found.effect, found.low, found.high, found.p, float(bool(found.untested))


def estimate(differences, difference_range=(-1.0, 1.0)) -> stats.Estimate:
    return stats.estimate(differences, 1 - ALPHA, 0, difference_range)


UNBOUNDED = (-np.inf, np.inf)  # no range check: the interval's own behaviour


@given(per_example_outcomes(), st.randoms(use_true_random=False))
def test_relabelling_and_shuffling_examples_and_seeds_changes_nothing(outcomes, random):
    found = estimate(differences_of(outcomes))
    orders = [random.sample(range(len(ids)), len(ids)) for ids, _, _ in outcomes]
    shuffled = estimate(differences_of(outcomes, label=lambda i: f"example-{i * 7 + 3}", order=orders))
    assert numbers(shuffled) == pytest.approx(numbers(found), nan_ok=True, rel=1e-9, abs=1e-12)
    seeds = differences_of(outcomes)
    random.shuffle(seeds)
    reordered = estimate(seeds)
    assert reordered.effect == pytest.approx(found.effect, abs=1e-12)
    assert (reordered.low, reordered.high, reordered.p) == pytest.approx((found.low, found.high, found.p), nan_ok=True)


@given(per_example_outcomes())
def test_swapping_treatment_and_control_flips_the_effect_and_the_interval(outcomes):
    found = estimate(differences_of(outcomes))
    swapped = estimate(differences_of([(ids, control, treated) for ids, treated, control in outcomes]))
    assert swapped.effect == pytest.approx(-found.effect, abs=1e-12)
    assert (swapped.low, swapped.high) == pytest.approx((-found.high, -found.low), nan_ok=True, abs=1e-12)
    assert swapped.p == pytest.approx(found.p, nan_ok=True) and bool(swapped.untested) == bool(found.untested)


@settings(max_examples=CLAIMS_TABLES)
@given(
    st.lists(st.floats(0.05, 0.95), min_size=2, max_size=6),
    st.lists(st.floats(-0.05, 0.05), min_size=6, max_size=6),
    st.floats(-0.5, 0.5),
    st.floats(0.1, 10),
)
def test_a_shift_of_a_scalar_metric_changes_no_difference_and_a_scale_scales_the_interval(base, gains, shift, scale):
    """Through the claims table: every model's neuron metric shifted by a constant gives the same row; scaled,
    the effect and its interval scale and p stays."""

    def row(transform):
        outcomes = claims.Outcomes()
        for seed, (value, gain) in enumerate(zip(base, gains), start=1):
            for cell, metric in (("none/base", value), ("none/pgd", value + gain)):
                model = {"dataset": "rt", **claims.parse_cell(cell), "seed": seed}
                outcomes.add(model, "selectivity", "all", transform(metric))
        contrasts = [{"treatment": ["none/pgd"], "control": ["none/base"]}]
        statement = {"family": "neurons", "primary": {"metric": "selectivity"}, "contrasts": contrasts}
        statement["direction"] = "better"
        settings_ = {"alpha": ALPHA, "power": 0.8, "seed": 0, "statements": {"claim": statement}}
        experiment = {"datasets": ["rt"], "ood": {"rt": []}, "attacks": [], "models": []}
        experiment["models"] = [{"dataset": "rt", "pretrain": "none", "method": m} for m in ("base", "pgd")]
        frame = claims.claims_table(outcomes, settings_, experiment)
        return frame[frame["metric"] == "selectivity"].iloc[0]

    plain, shifted = row(lambda v: v), row(lambda v: v + shift)
    columns = ["effect", "ci_low", "ci_high", "p"]
    assert shifted[columns].to_numpy(float) == pytest.approx(plain[columns].to_numpy(float), nan_ok=True, abs=1e-9)
    assert shifted["verdict"] == plain["verdict"]
    scaled = estimate([stats.SeedDifference(s, scale * g, None, None) for s, g in enumerate(gains)], UNBOUNDED)
    unscaled = estimate([stats.SeedDifference(s, g, None, None) for s, g in enumerate(gains)], UNBOUNDED)
    assert (scaled.effect, scaled.low, scaled.high) == pytest.approx(
        (scale * unscaled.effect, scale * unscaled.low, scale * unscaled.high), nan_ok=True, rel=1e-7, abs=1e-12
    )
    assert scaled.p == pytest.approx(unscaled.p, nan_ok=True, rel=1e-6)


@given(per_example_outcomes(), st.floats(0.1, 10))
def test_scaling_per_example_outcomes_scales_the_interval(outcomes, scale):
    wide = estimate(differences_of(outcomes), UNBOUNDED)
    scaled = estimate(differences_of([(ids, scale * t, scale * c) for ids, t, c in outcomes]), UNBOUNDED)
    assert scaled.effect == pytest.approx(scale * wide.effect, abs=1e-12)
    assert (scaled.low, scaled.high) == pytest.approx((scale * wide.low, scale * wide.high), nan_ok=True, rel=1e-7)
    assert scaled.p == pytest.approx(wide.p, nan_ok=True, rel=1e-6)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_adjusted_p_values_never_fall_below_the_raw_ones_and_keep_their_order(p_values):
    adjusted = stats.holm(p_values)
    assert all(p <= q <= 1 for p, q in zip(p_values, adjusted))
    order = np.argsort(p_values, kind="stable")
    assert all(adjusted[a] <= adjusted[b] for a, b in zip(order, order[1:]))
    smallest = order[0]
    assert adjusted[smallest] == pytest.approx(min(1.0, len(p_values) * p_values[smallest]))


@given(per_example_outcomes())
@example(  # found by hypothesis: one seed's variance underflows to 0, its covariance (3e-172) was kept as shared
    outcomes=[
        ([0, 1, 2, 3], np.array([0.0, 0.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0])),
        ([0, 1], np.array([0.0, 0.0]), np.array([6.69274617e-172, 0.00000000e000])),
    ]
)
def test_an_interval_leaves_the_metrics_range_only_where_the_row_says_why(outcomes):
    found = estimate(differences_of(outcomes))
    if found.untested:
        assert np.isnan(found.p)
    elif not np.isnan(found.low):
        assert -1 <= found.low <= found.effect <= found.high <= 1 and 0 <= found.p <= 1
    if found.low < -1 or found.high > 1:
        assert "leaves the range of a difference" in found.untested


def test_a_covariance_at_rounding_is_no_shared_part():
    """Found by the scaling property: outcomes scaled by 0.1 gave the examples a covariance of 1.6e-21 (exactly 0
    unscaled), whose sampling variance collapsed Satterthwaite's degrees of freedom and the interval to +-2.7e17."""
    outcomes = [
        ([0, 1], np.zeros(2), np.zeros(2)),
        ([0, 1], np.zeros(2), np.zeros(2)),
        (list(range(8)), np.zeros(8), np.eye(8)[7]),
        ([0, 1, 2, 3, 7, 6, 5, 4], np.eye(8)[7], np.eye(8)[6]),
    ]
    for scale in (1.0, 0.1):
        scaled = differences_of([(ids, scale * t, scale * c) for ids, t, c in outcomes])
        variance = stats.effect_variance(scaled)
        assert variance.examples == 0 and variance.df == 3
        assert estimate(scaled, UNBOUNDED).high == pytest.approx(scale * 0.06820144704011587)
