"""The paper's claims as statistical contrasts: seed-paired effects, intervals, Holm-corrected p-values, verdicts.

A claim (config ``claims.statements``) is a list of contrasts between two groups of (pre-training variant,
method) cells, a metric family and a claimed direction. For every contrast, metric and key (an attack or an
evaluation set) and every seed that trained all cells of both groups:

* ``d_s``: the treatment group minus the control group (a group is the mean of its cells). Where outcomes are
  per example (accuracy, accuracy under attack, attack success), ``d_s`` is the mean over the examples that
  every cell of the contrast has an outcome for, paired example by example (by id, in any order).
* The estimand (``ESTIMAND``): the effect over training runs and over the population of examples the test set and
  attack sample are drawn from. effect = mean of ``d_s``. Every seed is evaluated on the same test set and attacked
  on the same sample, so the examples' sampling noise is common to the seeds and a t interval over seeds leaves it
  out (it covered 76-90 % where example noise dominates). The variance (``effect_variance``) is that of a crossed
  seed x example model, d_si = effect + a_s + b_i + e_si, by the method of moments: var over seeds of d_s / S,
  plus sigma_b^2 q, with sigma_b^2 the covariance of two seeds' d_i over their shared examples and q the mean
  over seed pairs of |shared| / (n_s n_s') (1/n for identical sets); Satterthwaite's degrees of freedom. The
  95 % interval and p use the t distribution (``scipy.stats``); ``tests/test_claims.py`` checks 93-97 % coverage
  where seeds dominate, where examples dominate and where per-example outcomes are nearly deterministic. Scalar
  metrics (ECE, the neuron metrics) have no example level: the paired t-test over seeds. A two-level bootstrap
  over seeds and examples was rejected: with three seeds it resamples from 10 distinct seed sets and
  under-covers when the seeds differ more than the examples do.
* One primary endpoint per claim (``primary_endpoint``: the statement's ``primary``) decides its verdict; Holm's
  correction (``statsmodels``) runs over the primary endpoints of all claims, and separately over each claim's
  secondary rows. The verdict is *supported* when the Holm-adjusted p is below ``alpha`` and the effect points the
  claimed way, *contradicted* when it points the other way, *inconclusive* otherwise. The corrected interval is
  the interval at the row's Holm level (``alpha * p / p_holm``): it excludes 0 exactly when the verdict is not
  inconclusive.
* Power, for inconclusive rows (the exact noncentral-t power of the one-sample t-test over seeds, ``statsmodels``,
  at the Bonferroni level of the row's family, the level the last Holm step needs; roots by a bracketed
  root-finder and checked, ``detectable_effect``): the design figure, the smallest effect the run's seeds detect
  with 80 % power, in the metric's units; and, labelled post hoc (it plugs in the observed effect, a biased
  estimate of the true one), the seeds the observed effect would need with the same examples.

A row any of whose cells did not converge in one of its seeds (its training record's convergence check,
``advlm.convergence``) gets no verdict: *not converged*, with the cells and seeds in its note. A model at chance
looks robust (an attack cannot flip a constant prediction) and a still-learning one measures how fast a method
learns, not what it does; such rows leave the Holm family.

A row the t-test cannot test gets no verdict but *not tested* and the reason: one seed gives no between-seed
variance (the row shows the within-seed bootstrap interval over examples, ``scipy.stats.bootstrap``, of that one
training run); identical differences in every seed (discrete metrics on small sets) leave no spread to test
against; a NaN outcome has no value. Such rows stay in the table, outside the Holm family.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import artifacts
from .figures import DPI, FONT_PT
from .neurons.report import neuron_metrics
from .neurons.specialization import CAUSAL, SPECIALIZATION

# The transformation an attack recipe swaps with, and the one each augmenter uses: a model trained on a
# transformation has seen the attacks that use it (advlm/attacks/catalog.py, advlm/augment.py).
ATTACK_TRANSFORMATIONS = {
    "pwws": "wordnet",
    "textfooler": "counterfitted",
    "a2t": "counterfitted",
    "bae": "masked_lm",
    "bert-attack": "masked_lm",
    "deepwordbug": "characters",
}
AUGMENTER_TRANSFORMATIONS = {"wordnet": "wordnet", "embedding": "counterfitted"}

COLUMNS = [
    "claim",
    "endpoint",
    "dataset",
    "contrast",
    "metric",
    "key",
    "exposure",
    "better",
    "effect",
    "ci_low",
    "ci_high",
    "corrected_low",
    "corrected_high",
    "p",
    "p_holm",
    "verdict",
    "n_seeds",
    "n_examples",
    "detectable_effect",
    "seeds_needed",
    "note",
    "treatment",
    "control",
]


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    better: str  # "higher" or "lower": which way is better (more robust, more general, more specialized)
    per_example: bool


FAMILIES = {
    "robustness": (Metric("accuracy_under_attack", "higher", True), Metric("attack_success_rate", "lower", True)),
    "generalization": (Metric("accuracy", "higher", True), Metric("ece", "lower", False)),
    "neurons": tuple(Metric(name, better, False) for name, better in {**SPECIALIZATION, **CAUSAL}.items()),
}


def cell_name(cell: dict) -> str:
    return f"{cell['pretrain']}/{cell['method']}"


def parse_cell(text: str) -> dict:
    pretrain, method = text.split("/")
    return {"pretrain": pretrain, "method": method}


# --- outcomes --------------------------------------------------------------------------------------------


class Outcomes:
    """Every model's outcomes, keyed by (dataset, pretrain, method, seed, metric, key): a Series over example
    ids for per-example metrics, a float for the others."""

    def __init__(self):
        self.values: dict[tuple, pd.Series | float] = {}

    def add(self, model: dict, metric: str, key: str, value) -> None:
        self.values[(model["dataset"], model["pretrain"], model["method"], int(model["seed"]), metric, key)] = value

    def get(self, dataset: str, cell: dict, seed: int, metric: str, key: str):
        return self.values.get((dataset, cell["pretrain"], cell["method"], seed, metric, key))

    def seeds(self, dataset: str, cell: dict) -> set[int]:
        return {k[3] for k in self.values if k[:3] == (dataset, cell["pretrain"], cell["method"])}


def load_outcomes(predictions=(), evaluations=(), attacks=(), probes=()) -> Outcomes:
    """Outcomes from the workflow's per-model files: evaluate's ``<evalset>.predictions.csv`` (correct or not)
    and ``<evalset>.json`` (ECE), the gathered attack CSVs (robust: the model was right and the attack failed;
    success: the attack succeeded on an example the model had right, missing where it had it wrong) and
    ``probe.json`` (the specialization metrics and, for a fine-tuned model, the causal test's)."""
    from .report import model_of

    outcomes = Outcomes()
    for path in predictions:
        model = model_of(path)
        frame = pd.read_csv(path, dtype={"id": str})
        correct = (frame["prediction"] == frame["label"]).astype(float)
        outcomes.add(
            model, "accuracy", model["leaf"].removesuffix(".predictions"), pd.Series(correct.values, frame["id"])
        )
    for path in evaluations:
        model = model_of(path)
        outcomes.add(model, "ece", model["leaf"], float(artifacts.read_json(path)["ece"]))
    for path in attacks:
        model = model_of(path)
        frame = pd.read_csv(path, dtype={"id": str}, usecols=["id", "outcome"])
        ids, outcome = frame["id"].to_numpy(), frame["outcome"]
        outcomes.add(
            model, "accuracy_under_attack", model["leaf"], pd.Series((outcome == "failure").astype(float).values, ids)
        )
        success = (outcome == "success").astype(float).where(outcome != "skipped")
        outcomes.add(model, "attack_success_rate", model["leaf"], pd.Series(success.values, ids))
    for path in probes:
        model = model_of(path)
        metrics = neuron_metrics(artifacts.read_json(path))
        for name in SPECIALIZATION:
            outcomes.add(model, name, "all", float(metrics[name]))
        for name in CAUSAL:
            if np.isfinite(metrics[name]):  # the reference has no classifier to ablate
                outcomes.add(model, name, "all", float(metrics[name]))
    return outcomes


# --- one seed's difference -------------------------------------------------------------------------------


@dataclasses.dataclass
class SeedDifference:
    seed: int
    value: float  # treatment minus control
    n_examples: int | None
    # d_i by example id, one Series per evaluation set (the out-of-domain mean has several); None: not per example
    per_example: tuple[pd.Series, ...] | None


def _group_mean(series: list[pd.Series], ids: pd.Index) -> np.ndarray:
    return np.mean([s.reindex(ids).to_numpy(dtype=float) for s in series], axis=0)


def seed_difference(
    outcomes: Outcomes, dataset, treatment, control, seed, metric: Metric, key
) -> SeedDifference | None:
    """Treatment minus control for one seed, or None where a cell lacks the outcome."""
    values = {
        side: [outcomes.get(dataset, cell, seed, metric.name, key) for cell in cells]
        for side, cells in (("treatment", treatment), ("control", control))
    }
    if any(v is None for vs in values.values() for v in vs):
        return None
    if not metric.per_example:
        return SeedDifference(seed, float(np.mean(values["treatment"]) - np.mean(values["control"])), None, None)
    ids = None  # examples every cell has an outcome for (attack success: examples every cell had right)
    for series in (*values["treatment"], *values["control"]):
        present = series.dropna().index
        ids = present if ids is None else ids.intersection(present)
    if ids is None or len(ids) == 0:
        return None
    ids = ids.sort_values()  # pairing is by id, whatever order or subset each series holds
    d = _group_mean(values["treatment"], ids) - _group_mean(values["control"], ids)
    return SeedDifference(seed, float(d.mean()), len(d), (pd.Series(d, ids),))


def combined(differences: list[SeedDifference], seed: int) -> SeedDifference:
    """The mean over several keys (the out-of-domain sets) of one seed's differences."""
    return SeedDifference(
        seed,
        float(np.mean([d.value for d in differences])),
        sum(d.n_examples for d in differences),
        tuple(part for d in differences for part in d.per_example),
    )


# --- statistics ------------------------------------------------------------------------------------------


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
        denominator = sum(v**2 / df for v, df in parts if v > 0)
        return self.total**2 / denominator if denominator > 0 else float(self.seeds_df)


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
    examples_df = examples**2 / sum((variance / k**2) ** 2 / df for variance, df in parts if variance > 0)
    return dataclasses.replace(seeds, examples=examples, examples_df=examples_df)


def _shared_example_variance(series: list[pd.Series]) -> tuple[float, float] | None:
    """(sigma_b^2 * q, its degrees of freedom) of one evaluation set's d_i over seeds; None where no two seeds share
    2 examples. sigma_b^2 is the covariance of two seeds' d_i over their shared examples, pooled over the seed pairs;
    its degrees of freedom 2 c^2 / var(c), with var(c) = (s_x^2 s_y^2 + c^2) / (n - 1) of each pair, averaged
    (the pairs share seeds: no credit for their number), so that a covariance that is mostly noise carries few."""
    covariances, sampling_variances, dfs, overlaps = [], [], [], []
    for first, second in itertools.combinations(series, 2):
        shared = first.index.intersection(second.index)
        overlaps.append(len(shared) / (len(first) * len(second)))
        if len(shared) > 1:
            matrix = np.cov(first[shared], second[shared])
            covariances.append(float(matrix[0, 1]))
            sampling_variances.append((matrix[0, 0] * matrix[1, 1] + matrix[0, 1] ** 2) / (len(shared) - 1))
            dfs.append(len(shared) - 1)
    if not covariances:
        return None
    covariance = max(0.0, float(np.average(covariances, weights=dfs)))
    sampling_variance = float(np.mean(sampling_variances))
    df = 2 * covariance**2 / sampling_variance if sampling_variance > 0 else math.inf
    return covariance * float(np.mean(overlaps)), df


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


def power_note(variance: Variance, effect: float, alpha: float, power: float) -> dict:
    """The design figure: the smallest effect, in the metric's units, that the run's seeds detect with ``power`` at
    ``alpha`` (exact noncentral t over the seeds, at the row's whole variance: conservative where the examples'
    part is large). And, post hoc (biased: it plugs in the observed effect as if it were the true one), the seeds
    the observed effect would need with the same examples: the examples' part does not shrink with more seeds."""
    seeds = variance.seeds_df + 1
    per_seed_sd = math.sqrt(seeds * variance.total)
    out = {"detectable_effect": detectable_effect(seeds, alpha, power) * per_seed_sd, "seeds_needed": None}
    if effect == 0:
        return out
    seed_part = seeds * variance.seeds  # var over seeds of d_s

    def gain(n: float) -> float:
        return t_power(abs(effect) / math.sqrt(seed_part + n * variance.examples), n, alpha) - power

    out["seeds_needed"] = _root_integer(gain, 2, 10**6)
    return out


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


def _root_integer(function, low: int, high: int) -> float:
    """The smallest integer n >= low with ``function(n) >= 0`` for an increasing ``function``; inf beyond ``high``."""
    root = _root(function, float(low), float(high))
    if not math.isfinite(root):
        return math.inf
    n = max(low, math.ceil(root - 1e-9))
    return n if function(n) >= 0 else n + 1


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


# --- the claims table ------------------------------------------------------------------------------------


def metric_keys(family: str, metric: Metric, experiment: dict, dataset: str) -> list[str]:
    """The keys a metric is reported for: each attack, or each evaluation set (and the out-of-domain mean)."""
    if family == "robustness":
        return list(experiment["attacks"])
    if family == "generalization":
        ood = list(experiment["ood"].get(dataset, []))
        return ["test"] if metric.name == "ece" else ["test", *ood, *(["ood_mean"] if ood else [])]
    return ["all"]


def cell_transformations(experiment: dict, cell: dict) -> set[str]:
    """The word transformations a cell's training saw: its corpus augmenter (pre-training ``augmented``), the
    attack of its input-space method, and for a synonym-hull method (ascc, dne) the counter-fitted synonyms whose
    hull it trained in, the swaps of TextFooler and A2T."""
    seen = set()
    if cell["pretrain"] == "augmented":
        seen.add(AUGMENTER_TRANSFORMATIONS[experiment["augmenter"]])
    attack = experiment["method_attacks"].get(cell["method"])  # the input-space methods and their sweep points
    if attack:
        seen.add(ATTACK_TRANSFORMATIONS[attack])
    if cell["method"] in experiment["synonym_hull_methods"]:
        seen.add("counterfitted")
    return seen


def exposure(experiment: dict, treatment: list[dict], control: list[dict], attack: str) -> str:
    """Which group's training saw the attack's transformation, per group and with how many of its cells where not
    all did: "treatment saw it", "control saw it", "treatment and control saw it", "treatment (1 of 2 cells) saw
    it", "neither saw it"."""
    transformation = ATTACK_TRANSFORMATIONS[attack]
    groups = []
    for name, cells in (("treatment", treatment), ("control", control)):
        saw = sum(transformation in cell_transformations(experiment, cell) for cell in cells)
        if saw:
            groups.append(name if saw == len(cells) else f"{name} ({saw} of {len(cells)} cells)")
    return " and ".join(groups) + " saw it" if groups else NEITHER


NEITHER = "neither saw it"


def unconverged_models(train_logs) -> set[tuple]:
    """(dataset, pretrain, method, seed) of every model whose training record says it did not converge."""
    from .report import model_of

    out = set()
    for path in train_logs:
        if not artifacts.read_json(path)["convergence"]["converged"]:
            model = model_of(path)
            out.add((model["dataset"], model["pretrain"], model["method"], int(model["seed"])))
    return out


def _unconverged_note(dataset: str, cells: list[dict], seeds: list[int], unconverged: set[tuple]) -> str:
    bad = [
        f"{cell_name(cell)} seed {seed}"
        for cell in cells
        for seed in seeds
        if (dataset, cell["pretrain"], cell["method"], seed) in unconverged
    ]
    return "not converged: " + ", ".join(dict.fromkeys(bad)) if bad else ""


def contrast_rows(
    outcomes: Outcomes, claim: str, spec: dict, experiment: dict, settings: dict, unconverged: set = frozenset()
) -> list[dict]:
    """One row per dataset, contrast, metric and key of one claim (before Holm); ``unconverged``:
    unconverged_models."""
    rows = []
    trained = {(m["dataset"], m["pretrain"], m["method"]) for m in experiment["models"]}
    for dataset in experiment["datasets"]:
        primary = primary_endpoint(spec, experiment, dataset)
        for index, contrast in enumerate(spec["contrasts"]):
            treatment, control = ([parse_cell(c) for c in contrast[side]] for side in ("treatment", "control"))
            cells = [*treatment, *control]
            missing = [cell_name(c) for c in cells if (dataset, c["pretrain"], c["method"]) not in trained]
            seeds = sorted(set.intersection(*(outcomes.seeds(dataset, c) for c in cells)))
            not_converged = _unconverged_note(dataset, cells, seeds, unconverged)
            for metric in FAMILIES[spec["family"]]:
                for key in metric_keys(spec["family"], metric, experiment, dataset):
                    row = {
                        "claim": claim,
                        "dataset": dataset,
                        "contrast": f"{' + '.join(contrast['treatment'])} vs {' + '.join(contrast['control'])}",
                        "treatment": " + ".join(contrast["treatment"]),
                        "control": " + ".join(contrast["control"]),
                        "metric": metric.name,
                        "key": key,
                        "endpoint": PRIMARY if (index, metric.name, key) == primary else SECONDARY,
                        "better": metric.better,
                        "exposure": exposure(experiment, treatment, control, key)
                        if spec["family"] == "robustness"
                        else "",
                    }
                    if missing:
                        rows.append(
                            {**row, "verdict": "not run", "n_seeds": 0, "note": f"not trained: {', '.join(missing)}"}
                        )
                        continue
                    if not_converged:
                        rows.append({**row, "verdict": "not converged", "n_seeds": len(seeds), "note": not_converged})
                        continue
                    differences = _differences(outcomes, dataset, treatment, control, seeds, metric, key, experiment)
                    rows.append({**row, **_statistics(differences, settings)})
    return rows


def _differences(outcomes, dataset, treatment, control, seeds, metric, key, experiment) -> list[SeedDifference]:
    out = []
    for seed in seeds:
        if key == "ood_mean":
            parts = [
                seed_difference(outcomes, dataset, treatment, control, seed, metric, k)
                for k in experiment["ood"][dataset]
            ]
            difference = None if any(p is None for p in parts) else combined(parts, seed)
        else:
            difference = seed_difference(outcomes, dataset, treatment, control, seed, metric, key)
        if difference is not None:
            out.append(difference)
    return out


def _statistics(differences: list[SeedDifference], settings: dict) -> dict:
    """Effect, interval and p of one row; the verdict, the corrected interval and the power come after Holm."""
    level = 1 - settings["alpha"]
    values = np.array([d.value for d in differences])
    examples = [d.n_examples for d in differences if d.n_examples is not None]
    base = {"n_seeds": len(values), "n_examples": min(examples) if examples else None}
    if len(values) == 0:
        return {**base, "verdict": "not run", "note": "no seed with outcomes for every cell"}
    missing = [d.seed for d in differences if not math.isfinite(d.value)]
    if missing:
        return {**base, "verdict": NOT_TESTED, "note": f"outcome NaN in seed {', '.join(map(str, missing))}"}
    effect = float(values.mean())
    if len(values) == 1:
        parts = differences[0].per_example
        low, high = (
            bootstrap_interval(parts[0].to_numpy(), level, settings["seed"])
            if parts is not None and len(parts) == 1
            else (math.nan, math.nan)
        )
        return {
            **base,
            "effect": effect,
            "ci_low": low,
            "ci_high": high,
            "p": math.nan,
            "verdict": NOT_TESTED,
            "note": "needs ≥ 2 seeds; interval: examples of the one seed (this training run only)",
        }
    variance = effect_variance(differences)
    if variance.total == 0:  # discrete metrics on small sets: no spread over seeds or examples to test against
        return {
            **base,
            "effect": effect,
            "verdict": NOT_TESTED,
            "note": f"no spread over seeds: every seed's difference is {_number(effect)}",
        }
    p, low, high = t_interval(effect, variance, level)
    return {**base, "effect": effect, "ci_low": low, "ci_high": high, "p": p, "_variance": variance}


NOT_TESTED = "not tested"  # a row the t-test over seeds cannot test: its note says why

ESTIMAND = (
    "Effect: the treatment group's outcome minus the control group's, averaged over training runs (seeds) and over "
    "the population of examples that the test set and attack sample are drawn from; its 95 % interval counts both "
    "sources of noise (a crossed seed × example model)."
)


def finish_family(rows: list[dict], directions: dict[str, str], settings: dict) -> None:
    """Holm over the rows of one family that have a p-value, then their verdicts (``directions``: claim -> the
    claimed direction), Holm-corrected intervals and, for the inconclusive ones, power at the family's
    Bonferroni level (the level Holm's last step needs)."""
    alpha = settings["alpha"]
    tested = [row for row in rows if not math.isnan(row.get("p", math.nan))]
    for row, adjusted in zip(tested, holm([row["p"] for row in tested])):
        row["p_holm"] = adjusted
        variance = row.pop("_variance")
        row_alpha = alpha if row["p"] == 0 or adjusted == 0 else min(alpha, alpha * row["p"] / adjusted)
        _, row["corrected_low"], row["corrected_high"] = t_interval(row["effect"], variance, 1 - row_alpha)
        row["verdict"] = verdict(row["effect"], adjusted, row["better"], directions[row["claim"]], alpha)
        if row["verdict"] == "inconclusive":
            note = power_note(variance, row["effect"], alpha / len(tested), settings["power"])
            row.update(note)
            row["note"] = _needs(note, row["n_seeds"], settings["power"])
    for row in rows:
        row.pop("_variance", None)
        assert row.get("verdict") is not None, row  # every row is tested or says why not


def verdict(effect: float, p_holm: float, better: str, direction: str, alpha: float) -> str:
    if p_holm >= alpha:
        return "inconclusive"
    improves = (effect > 0) == (better == "higher")
    return "supported" if improves == (direction == "better") else "contradicted"


def _needs(note: dict, seeds: int, power: float) -> str:
    detectable = note["detectable_effect"]
    text = (
        f"detectable at {power * 100:g} % power with {seeds} seeds: |effect| ≥ {detectable:.3g}"
        if math.isfinite(detectable)
        else f"no effect is detectable at {power * 100:g} % power with {seeds} seeds"
    )
    if note["seeds_needed"] is None:
        return text + "; no effect observed"
    seeds_needed = note["seeds_needed"]
    return (
        text
        + "; post hoc, to detect the observed effect: "
        + (
            "more seeds cannot (the test set's example noise, or over a million seeds)"
            if math.isinf(seeds_needed)
            else f"{seeds_needed:,} seeds"
        )
    )


def claims_table(outcomes: Outcomes, settings: dict, experiment: dict, unconverged: set = frozenset()) -> pd.DataFrame:
    """Every claim's rows: ``settings`` is the config's ``claims`` block; ``experiment`` says what was run
    (rules/common.smk ``claims_experiment``: datasets, ood, attacks, augmenter, method_attacks,
    synonym_hull_methods, models);
    ``unconverged``: the models whose training did not converge (unconverged_models)."""
    statements = settings["statements"]
    rows = [
        row
        for claim, spec in statements.items()
        for row in contrast_rows(outcomes, claim, spec, experiment, settings, unconverged)
    ]
    directions = {claim: spec["direction"] for claim, spec in statements.items()}
    finish_family([row for row in rows if row["endpoint"] == PRIMARY], directions, settings)  # across the claims
    for claim in statements:  # each claim's secondary rows: a family of their own
        secondary = [row for row in rows if row["claim"] == claim and row["endpoint"] == SECONDARY]
        finish_family(secondary, directions, settings)
    return pd.DataFrame(rows, columns=COLUMNS)


PRIMARY, SECONDARY = "primary", "secondary"


def primary_endpoint(spec: dict, experiment: dict, dataset: str) -> tuple[int, str, str]:
    """(contrast index, metric, key) of the row that decides a claim's verdict: the statement's ``primary``, its
    missing parts from the family: the family's first metric, on the out-of-domain mean where there is one, else
    the first key (the first attack; the in-domain test set)."""
    primary = spec.get("primary") or {}
    metric = primary.get("metric") or FAMILIES[spec["family"]][0].name
    keys = metric_keys(spec["family"], _metric(metric), experiment, dataset)
    key = primary.get("key") or ("ood_mean" if "ood_mean" in keys else keys[0])
    return primary.get("contrast", 0), metric, key


def _metric(name: str) -> Metric:
    return next(metric for metrics in FAMILIES.values() for metric in metrics if metric.name == name)


# --- the forest plot -------------------------------------------------------------------------------------


# Panels of the forest plot: one per claim and scale, so that an effect on a rate never shares an axis with one on
# a calibration error or a neuron share.
SCALES = {
    "accuracy": "difference in accuracy",
    "accuracy_under_attack": "difference in accuracy under attack / attack success",
    "attack_success_rate": "difference in accuracy under attack / attack success",
    "ece": "difference in expected calibration error",
}
VERDICT_COLOURS = {
    "supported": "tab:green",
    "contradicted": "tab:red",
    "inconclusive": "tab:gray",
    NOT_TESTED: "tab:purple",
    "not converged": "tab:orange",
    "not run": "lightgray",
}


def plot_forest(table: pd.DataFrame, path: str | Path) -> None:
    """Every row's effect with its 95 % interval (thick) and Holm-corrected interval (thin), coloured by verdict,
    one panel per claim and metric scale; metrics where lower is better are drawn negated, so right of 0 is always
    "treatment better". Rows without an effect (not run, not converged) are listed in their panel, unplotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    table = table.assign(scale=[SCALES.get(m, "difference in neuron specialization metric") for m in table["metric"]])
    panels = list(dict.fromkeys(zip(table["claim"], table["scale"]))) or [("(no claim)", "")]
    sizes = [max(1, int(((table["claim"] == c) & (table["scale"] == k)).sum())) for c, k in panels]
    figure = plt.figure(figsize=(10, 1.2 + sum(0.42 * n + 1.1 for n in sizes)), layout="constrained")
    axes = figure.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": [n + 2.6 for n in sizes]})
    for axis, (claim, scale) in zip(axes[:, 0], panels):
        _forest_panel(axis, table[(table["claim"] == claim) & (table["scale"] == scale)])
        axis.set_title(f"{claim}\n{scale}", fontsize=FONT_PT, loc="left")
        axis.set_xlabel("effect (> 0: the treatment is better)", fontsize=FONT_PT)
    handles = [Line2D([], [], color=colour, linewidth=4, label=v) for v, colour in VERDICT_COLOURS.items()]
    handles += [
        Line2D([], [], color="black", linewidth=4, alpha=0.4, label="95 % interval"),
        Line2D([], [], color="black", linewidth=1, alpha=0.4, label="Holm-corrected interval"),
    ]
    figure.legend(
        handles=handles,
        loc="outside upper center",
        ncols=4,
        fontsize=FONT_PT,
        frameon=False,
        title="The claims: treatment minus control, mean over seeds; metrics where lower is better are negated",
        title_fontsize=FONT_PT + 1,
    )
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def _forest_panel(axis, part: pd.DataFrame) -> None:
    sign = np.where(part["better"] == "lower", -1.0, 1.0)
    y = np.arange(len(part))[::-1]
    colours = [VERDICT_COLOURS.get(v, "tab:gray") for v in part["verdict"]]
    for low, high, width in (("corrected_low", "corrected_high", 1), ("ci_low", "ci_high", 5)):
        lows, highs = part[low].to_numpy(float) * sign, part[high].to_numpy(float) * sign
        axis.hlines(y, np.fmin(lows, highs), np.fmax(lows, highs), linewidth=width, colors=colours, alpha=0.7)
    axis.scatter(part["effect"].to_numpy(float) * sign, y, color="black", s=12, zorder=3)
    labels = [
        f"{r.contrast}\n{r.metric} {r.key}" + ("" if pd.notna(r.effect) else f"  [{r.verdict}]")
        for r in part.itertuples()
    ]
    axis.set_yticks(y, labels, fontsize=FONT_PT)
    axis.set_ylim(-0.7, len(part) - 0.3)
    axis.tick_params(axis="x", labelsize=FONT_PT)
    axis.axvline(0, color="black", linewidth=0.8)


# --- the summary -----------------------------------------------------------------------------------------


def headline_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The primary endpoints: the rows that decide the claims' verdicts."""
    return table[table["endpoint"] == PRIMARY]


def headline(table: pd.DataFrame) -> pd.DataFrame:
    """One line per claim (and dataset): its primary endpoint's contrast, metric and key (with which group's
    training saw the attack), the effect with its 95 % interval, the verdict (Holm across the claims) and n; the
    README and the report lead with it."""
    part = headline_rows(table)
    return pd.DataFrame(
        {
            "claim": part["claim"],
            "contrast": part["contrast"],
            "primary endpoint": [_endpoint_name(r) for r in part.itertuples()],
            "effect [95 % interval]": [
                f"{_number(r.effect)} {_interval(r.ci_low, r.ci_high)}".strip() for r in part.itertuples()
            ],
            "verdict": [_headline_verdict(v, note) for v, note in zip(part["verdict"], part["note"].fillna(""))],
            "n": [_n(r.n_seeds, r.n_examples) for r in part.itertuples()],
        }
    )


def landing_rst(table: pd.DataFrame) -> str:
    """The report's landing-page headline (reStructuredText): each claim's verdict on its primary endpoint, or why
    there is none, with the effect and its interval; Jinja markup in it is left as text."""
    lines = [
        "The answer",
        "----------",
        "",
        f"{ESTIMAND} Each claim's verdict is its primary endpoint's, "
        "Holm-corrected across the claims (every row: ``claims.csv``, the summary and the forest plot).",
        "",
    ]
    for row in headline_rows(table).itertuples():
        note = row.note if isinstance(row.note, str) else ""
        effect = f"{_number(row.effect)} {_interval(row.ci_low, row.ci_high)}".strip()
        lines.append(
            f"- **{row.claim}** ({row.dataset}): **{_headline_verdict(row.verdict, note)}**. {_endpoint_name(row)}, "
            f"{row.contrast}: {effect} ({_n(row.n_seeds, row.n_examples)})."
        )
    return "{% raw %}\n" + "\n".join(lines) + "\n{% endraw %}\n"


def _endpoint_name(row) -> str:
    name = row.metric if row.key == "all" else f"{row.metric} ({row.key})"
    return f"{name}; {row.exposure}" if isinstance(row.exposure, str) and row.exposure else name


def _headline_verdict(verdict: str, note: str) -> str:
    """The verdict, with the reason where there is none (not converged, not run); power notes stay in the full
    table."""
    if verdict == "not converged":
        return note
    return f"{verdict} ({note})" if verdict in ("not run", NOT_TESTED) and note else verdict


def markdown(table: pd.DataFrame, settings: dict) -> str:
    """The claims for ``summary.md``: per claim its statement, its verdict (the primary endpoint's), and its
    secondary rows, one line each with the effect, its 95 % interval, the Holm-corrected p (within the claim), the
    verdict, n and what an inconclusive row needs. A claim's verdict is its primary endpoint's, never a count."""
    lines = []
    primaries = table[table["endpoint"] == PRIMARY]
    tested = int(primaries["p_holm"].notna().sum())  # Holm's family: the claims not run or not tested are not in it
    family = f"{tested} tested claim{'s' if tested > 1 else ''}"
    for claim, part in table.groupby("claim", sort=False):
        text = settings["statements"][claim].get("text")
        lines += [f"### {claim}", "", f"*{text}*" if text else "", ""]
        for row in primaries[primaries["claim"] == claim].itertuples():
            p_holm = "" if pd.isna(row.p_holm) else f", Holm-adjusted p {row.p_holm:.3g} across {family}"
            lines += [
                f"**Verdict: {_headline_verdict(row.verdict, row.note if isinstance(row.note, str) else '')}** "
                f"(primary endpoint: {_endpoint_name(row)}, {row.contrast}, {row.dataset}: "
                f"{_number(row.effect)} {_interval(row.ci_low, row.ci_high)}{p_holm}).",
                "",
            ]
        secondary = part[part["endpoint"] == SECONDARY]
        if secondary.empty:
            continue
        shown = secondary.assign(
            effect=secondary["effect"].map(_number),
            interval=[_interval(r.ci_low, r.ci_high) for r in secondary.itertuples()],
            p_holm=secondary["p_holm"].map(lambda p: "" if pd.isna(p) else f"{p:.3g}"),
            n=[_n(r.n_seeds, r.n_examples) for r in secondary.itertuples()],
            note=secondary["note"].fillna(""),
        )
        columns = ["dataset", "contrast", "metric", "key", "effect", "interval", "p_holm", "verdict", "n", "note"]
        lines += ["Secondary rows (Holm within the claim; they do not decide its verdict):", ""]
        if not secondary["exposure"].any():
            lines += [shown[columns].to_markdown(index=False), ""]
            continue
        # Robustness: one table per exposure (which group trained on the attack's transformation), unseen last.
        order = sorted(secondary["exposure"].unique(), key=lambda value: (value == NEITHER, value))
        for value in order:
            rows = shown[secondary["exposure"] == value]
            lines += [
                f"Attacks: {value}",
                "",
                rows[[*columns[:4], "exposure", *columns[4:]]].to_markdown(index=False),
                "",
            ]
    return "\n".join(lines)


def _number(value) -> str:
    return (
        ""
        if value is None or pd.isna(value)
        else f"{value:+.3f}"
        if abs(value) >= 1e-3 or value == 0
        else f"{value:.1e}"
    )


def _interval(low, high) -> str:
    return "" if pd.isna(low) else f"[{low:+.3f}, {high:+.3f}]"


def _n(seeds, examples) -> str:
    seeds = 0 if pd.isna(seeds) else int(seeds)
    return f"{seeds} seeds" + ("" if examples is None or pd.isna(examples) else f" × {int(examples)} ex.")
