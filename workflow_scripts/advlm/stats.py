"""The statistics of a claim's row: the seed-paired effect, its variance and interval, power, Holm's correction and
the verdict. ``advlm.claims`` builds the rows; the numbers are computed here.

* ``d_s``: one seed's difference, treatment minus control (``SeedDifference``). Where outcomes are per example
  (accuracy, accuracy under attack, attack success), ``d_s`` is the mean over the examples that every cell of the
  contrast has an outcome for, paired example by example, and the per-example differences ``d_i`` travel with it.
* The estimand: the effect over training runs and over the population of examples the test set and attack sample
  are drawn from (attack success: over the examples every cell classified correctly in that seed, a population
  that changes by seed; the row's ``estimand`` says so). effect = mean of ``d_s``. Every seed is evaluated on
  the same test set and attacked on the same sample, so the examples' sampling noise is common to the seeds and
  a t interval over seeds leaves it out (it covered 76-90 % where example noise dominates). The variance
  (``effect_variance``) is that of a crossed seed x example model, d_si = effect + a_s + b_i + e_si, by the
  method of moments: var over seeds of d_s / S, plus sigma_b^2 q, with sigma_b^2 the covariance of two seeds' d_i
  over their shared examples and q the mean over seed pairs of |shared| / (n_s n_s') (1/n for identical sets);
  Satterthwaite's degrees of freedom. The 95 % interval and p use the t distribution (``scipy.stats``);
  ``tests/test_stats.py`` checks 93-97 % coverage where seeds dominate, where examples dominate, where per-example
  outcomes are nearly deterministic, where the seeds' example sets differ, for the out-of-domain mean over sets of
  different sizes and for a scalar metric. Scalar metrics (ECE, the neuron metrics) have no example level in the
  records: the paired t-test over seeds, whose interval leaves the test set's example noise out (the row's
  ``estimand`` says "seeds only"). A two-level bootstrap over seeds and examples was rejected: with three seeds it
  resamples from 10 distinct seed sets and under-covers when the seeds differ more than the examples do.
* Holm's correction (``statsmodels``) over a family of rows; the verdict is *supported* when the Holm-adjusted p
  is below ``alpha`` and the effect points the claimed way, *contradicted* when it points the other way,
  *inconclusive* otherwise.
* Power, for inconclusive rows (the exact noncentral-t power of the one-sample t-test over seeds, ``statsmodels``,
  at the Bonferroni level alpha / m of the row's family of m tested rows, the level of Holm's first step, so
  conservative for all but the row with the smallest p; roots by a bracketed root-finder and checked,
  ``detectable_effect``): the design figure, the smallest effect the run's seeds detect with 80 % power, in the
  metric's units. No post hoc power (the seeds the observed effect would need): it restates the p-value.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd

# --- one seed's difference -------------------------------------------------------------------------------


@dataclasses.dataclass
class SeedDifference:
    seed: int
    value: float  # treatment minus control
    n_examples: int | None
    # d_i by example id, one Series per evaluation set (the out-of-domain mean has several); None: not per example
    per_example: tuple[pd.Series, ...] | None


def combined(differences: list[SeedDifference], seed: int) -> SeedDifference:
    """The mean over several keys (the out-of-domain sets) of one seed's differences."""
    return SeedDifference(
        seed,
        float(np.mean([d.value for d in differences])),
        sum(d.n_examples for d in differences),
        tuple(part for d in differences for part in d.per_example),
    )


# --- statistics ------------------------------------------------------------------------------------------

# A spread below this share of the values' size is floating-point rounding, not spread: 0.2 - 0.3 and 0.3 - 0.4
# differ by 3e-17, which a t-test takes for a real, tiny variance (p 3.5e-32).
NO_SPREAD = 1e-9


@dataclasses.dataclass(frozen=True)
class Variance:
    """The variance of a row's effect (the mean of the seeds' differences) under a crossed seed x example model,
    d_si = effect + a_s + b_i + e_si, and its Satterthwaite degrees of freedom.

    ``seeds``: var over seeds of d_s, / S (seed noise, and the examples' noise where the seeds' example sets
    differ); ``examples``: the part that every seed shares because every seed is evaluated on the same test set
    and attacked on the same sample, sigma_b^2 * q, with sigma_b^2 the covariance of two seeds' d_i over their
    shared examples and q the mean over seed pairs of |shared| / (n_s n_s') (1/n where every seed has the same
    n examples). The t interval over seeds alone leaves ``examples`` out.
    """

    seeds: float
    seeds_df: int
    examples: float = 0.0
    examples_df: float = math.inf

    @property
    def total(self) -> float:
        return self.seeds + self.examples

    @property
    def df(self) -> float:
        parts = [(self.seeds, self.seeds_df), (self.examples, self.examples_df)]
        denominator = sum((v / self.total) ** 2 / df for v, df in parts if v > 0)  # shares: no underflow
        return 1 / denominator if denominator > 0 else float(self.seeds_df)


def effect_variance(differences: list[SeedDifference]) -> Variance:
    """:class:`Variance` of the mean of ``differences`` (method of moments; scalar metrics: the seeds' part only)."""
    values = np.array([d.value for d in differences])
    seeds = Variance(float(np.var(values, ddof=1)) / len(values), len(values) - 1)
    if differences[0].per_example is None:
        return seeds
    k = len(differences[0].per_example)
    parts = [_shared_example_variance([d.per_example[part] for d in differences]) for part in range(k)]
    parts = [part for part in parts if part is not None]
    examples = sum(variance for variance, _ in parts) / k**2
    if examples <= 0:
        return seeds
    # Satterthwaite's rule on the parts' shares of the sum: squares of tiny variances would underflow to 0
    examples_df = 1 / sum((variance / k**2 / examples) ** 2 / df for variance, df in parts if variance > 0)
    return dataclasses.replace(seeds, examples=examples, examples_df=examples_df)


def _shared_example_variance(series: list[pd.Series]) -> tuple[float, float] | None:
    """(sigma_b^2 * q, its degrees of freedom) of one evaluation set's d_i over seeds; None where no two seeds share
    2 examples. sigma_b^2 is c, the covariance of two seeds' d_i over their shared examples, pooled over the seed
    pairs with weights n - 1; its degrees of freedom 2 c^2 / var(c), so that a covariance that is mostly noise
    carries few. var(c) is that of the pooled mean, whose pairs share seeds (:func:`_pooled_covariance_variance`)."""
    pairs = []
    for first, second in itertools.combinations(range(len(series)), 2):
        shared = series[first].index.intersection(series[second].index)
        overlap = len(shared) / (len(series[first]) * len(series[second]))
        pairs.append(((first, second), shared, overlap))
    tested = [(seeds, shared) for seeds, shared, _ in pairs if len(shared) > 1]
    if not tested:
        return None
    matrices = [np.cov(series[a][shared], series[b][shared]) for (a, b), shared in tested]
    weights = np.array([len(shared) - 1 for _, shared in tested])
    covariance = float(np.average([matrix[0, 1] for matrix in matrices], weights=weights))
    # Below zero, or at rounding (1e-21 where the seeds' variances are 0.01): no shared part. A covariance at
    # rounding would keep its sampling variance in Satterthwaite's sum and collapse the degrees of freedom. The
    # rounding is judged against the largest variance, not the pairs' sds: one seed's variance can underflow to 0.
    size = max(max(matrix[0, 0], matrix[1, 1]) for matrix in matrices)
    covariance = covariance if covariance > NO_SPREAD * size else 0.0
    sampling_variance = _pooled_covariance_variance(series, tested, matrices, weights, covariance)
    df = 2 * covariance**2 / sampling_variance if sampling_variance > 0 else math.inf
    return covariance * float(np.mean([overlap for _, _, overlap in pairs])), df


def _pooled_covariance_variance(
    series: list[pd.Series], pairs: list, matrices: list[np.ndarray], weights: np.ndarray, c: float
) -> float:
    """The sampling variance of the weighted mean of the seed pairs' covariances, sum_pq w_p w_q K_pq / (sum w)^2,
    by Isserlis' theorem for normal d_i with covariance ``c`` between any two seeds: K_pp = (s_a^2 s_b^2 + c^2) /
    (n - 1) for pair p = (a, b) over its n shared examples; K_pq = (s_a^2 c + c^2) / (n - 1) for two pairs sharing
    seed a, over the n examples all three seeds share; 0 for pairs with no seed in common. Counting the pairs as
    independent would overstate the degrees of freedom where the examples' part dominates (every pair then sees
    the same b_i); counting them as one (K_pq = K_pp) understates it where the seeds' noise does: 3 seeds' t
    interval then covered 97.6 % of the out-of-domain mean (tests/test_stats.py). ``matrices``: each pair's
    covariance matrix over its shared examples, whose diagonal is s_a^2 and s_b^2."""
    total = 0.0
    for (p, (seeds_p, shared_p)), (q, (seeds_q, shared_q)) in itertools.product(enumerate(pairs), repeat=2):
        common = set(seeds_p) & set(seeds_q)
        if p == q:
            k = (matrices[p][0, 0] * matrices[p][1, 1] + c**2) / (len(shared_p) - 1)
        elif len(common) == 1:
            (a,) = common
            shared = shared_p.intersection(shared_q)
            k = (np.var(series[a][shared], ddof=1) * c + c**2) / (len(shared) - 1) if len(shared) > 1 else 0.0
        else:
            k = 0.0
        total += weights[p] * weights[q] * k
    return float(total / weights.sum() ** 2)


def t_interval(effect: float, variance: Variance, level: float) -> tuple[float, float, float]:
    """(p, low, high): two-sided t-test of effect = 0 and the ``level`` interval, effect +- t(df) * sqrt(variance)
    (scipy.stats.t); for a scalar metric the paired t-test over seeds, mean +- t(1 - a/2, S - 1) s / sqrt(S)."""
    from scipy import stats

    se, df = math.sqrt(variance.total), variance.df
    p = float(2 * stats.t.sf(abs(effect) / se, df))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return p, effect - half, effect + half


def bootstrap_interval(per_example: np.ndarray, level: float, seed: int) -> tuple[float, float]:
    """Percentile interval of the mean over examples resampled within one seed (scipy.stats.bootstrap)."""
    from scipy import stats

    if len(per_example) < 2 or np.ptp(per_example) == 0:
        mean = float(np.mean(per_example))
        return mean, mean
    result = stats.bootstrap(
        (per_example,),
        np.mean,
        confidence_level=level,
        method="percentile",
        n_resamples=2000,
        random_state=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def detectable_difference(variance: Variance, alpha: float, power: float) -> float:
    """The design figure: the smallest effect, in the metric's units, that the run's seeds detect with ``power`` at
    ``alpha`` (exact noncentral t over the seeds, at the row's whole variance: conservative where the examples'
    part is large). No post hoc power: plugging in the observed effect would only restate the p-value."""
    seeds = variance.seeds_df + 1
    return detectable_effect(seeds, alpha, power) * math.sqrt(seeds * variance.total)


def t_power(standardized_effect: float, nobs: float, alpha: float) -> float:
    """Power of the two-sided one-sample t-test: statsmodels' TTestPower.power (exact, noncentral t). Where scipy's
    noncentral t returns NaN (it does, e.g. at 2 seeds and an effect of 48-100 sd), the same probability as an
    integral over the chi-square quantiles of the variance: P(|Z + nc| > t sqrt(V/df)), V ~ chi2(df)."""
    from statsmodels.stats.power import TTestPower

    value = float(TTestPower().power(effect_size=standardized_effect, nobs=nobs, alpha=alpha, alternative="two-sided"))
    return value if math.isfinite(value) else t_power_integral(standardized_effect, nobs, alpha)


def t_power_integral(standardized_effect: float, nobs: float, alpha: float) -> float:
    """t_power as an integral over the chi-square quantiles u of the variance V: P(|Z + nc| > t sqrt(V/df))."""
    from scipy import integrate, stats

    df, noncentrality = nobs - 1, standardized_effect * math.sqrt(nobs)
    critical = stats.t.isf(alpha / 2, df)

    def rejected(quantile: float) -> float:
        scale = critical * math.sqrt(stats.chi2.ppf(quantile, df) / df)
        return stats.norm.sf(scale - noncentrality) + stats.norm.cdf(-scale - noncentrality)

    return float(integrate.quad(rejected, 0, 1, limit=200)[0])


def detectable_effect(seeds: int, alpha: float, power: float) -> float:
    """The smallest standardized effect (mean / sd of the per-seed differences) that ``seeds`` seeds detect with
    ``power`` at ``alpha``: the root of the exact power curve, bracketed and found by Brent's method (statsmodels'
    solve_power returns a wrong root at small n, e.g. 10.0 for 2 seeds at a Bonferroni alpha, where the true value
    is 138), then checked with t_power; inf where none exists below 1e6 sd (or with fewer than 2 seeds)."""
    return _root(lambda d: t_power(d, seeds, alpha) - power, 1e-6, 1e6) if seeds >= 2 else math.inf


def _root(function, low: float, high: float) -> float:
    """The root of an increasing ``function`` in [low, high] (scipy's brentq), checked: inf where the bracket holds
    no sign change or the root does not solve the equation."""
    from scipy.optimize import brentq

    if function(low) >= 0:
        return low
    if function(high) < 0:
        return math.inf
    root = brentq(function, low, high, xtol=1e-10, rtol=1e-10)
    return root if abs(function(root)) < 1e-6 else math.inf


def holm(p_values: list[float]) -> list[float]:
    from statsmodels.stats.multitest import multipletests

    return list(multipletests(p_values, method="holm")[1]) if p_values else []


# --- one row -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Estimate:
    """One row's numbers before Holm: the effect and, where the t-test can test it, its interval, p and variance.
    ``untested``: why the t-test cannot ("" where it can); the interval may still be shown (one seed's bootstrap;
    an interval wider than the metric allows)."""

    effect: float
    low: float = math.nan
    high: float = math.nan
    p: float = math.nan
    variance: Variance | None = None
    untested: str = ""


def estimate(
    differences: list[SeedDifference], level: float, bootstrap_seed: int, difference_range: tuple[float, float]
) -> Estimate:
    """The effect (mean of the seeds' differences), its ``level`` t interval and p (``effect_variance``), or why
    the row cannot be tested: a NaN outcome, one seed (then the within-seed bootstrap interval over examples of
    that one training run), no spread beyond rounding, or an interval that leaves ``difference_range`` (the range
    of a difference of the metric) because the degrees of freedom collapse."""
    values = np.array([d.value for d in differences])
    missing = [d.seed for d in differences if not math.isfinite(d.value)]
    if missing:
        return Estimate(math.nan, untested=f"outcome NaN in seed {', '.join(map(str, missing))}")
    effect = float(values.mean())
    if len(values) == 1:
        parts = differences[0].per_example
        low, high = (
            bootstrap_interval(parts[0].to_numpy(), level, bootstrap_seed)
            if parts is not None and len(parts) == 1
            else (math.nan, math.nan)
        )
        return Estimate(
            effect, low, high, untested="needs ≥ 2 seeds; interval: examples of the one seed (this training run only)"
        )
    variance = effect_variance(differences)
    if math.sqrt(variance.total) <= NO_SPREAD * float(np.abs(values).max()):
        return Estimate(effect, untested=f"no spread over seeds: every seed's difference is {format_effect(effect)}")
    p, low, high = t_interval(effect, variance, level)
    lowest, highest = difference_range
    if low < lowest or high > highest:
        return Estimate(
            effect,
            low,
            high,
            untested=f"the interval {format_interval(low, high)} leaves the range of a difference, "
            f"[{lowest:+g}, {highest:+g}]: Satterthwaite's degrees of freedom {variance.df:.2f} (the examples' "
            "covariance, over these few seeds and examples, is mostly noise) are too few to test",
        )
    return Estimate(effect, low, high, p, variance)


def holm_level(alpha: float, p: float, p_holm: float) -> float:
    """The level at which a row's raw p meets its Holm-adjusted p's threshold, alpha * p / p_holm: the interval at
    it (the corrected interval) excludes 0 exactly when p_holm < alpha."""
    return alpha if p == 0 or p_holm == 0 else min(alpha, alpha * p / p_holm)


def verdict(effect: float, p_holm: float, better: str, direction: str, alpha: float) -> str:
    if p_holm >= alpha:
        return "inconclusive"
    improves = (effect > 0) == (better == "higher")
    return "supported" if improves == (direction == "better") else "contradicted"


def format_effect(value) -> str:
    return (
        ""
        if value is None or pd.isna(value)
        else f"{value:+.3f}"
        if abs(value) >= 1e-3 or value == 0
        else f"{value:.1e}"
    )


def format_interval(low, high) -> str:
    return "" if pd.isna(low) else f"[{low:+.3f}, {high:+.3f}]"
