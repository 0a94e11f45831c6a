"""The paper's claims as statistical contrasts: seed-paired effects, intervals, Holm-corrected p-values, verdicts.

A claim (config ``claims.statements``) is a list of contrasts between two groups of (pre-training variant,
method) cells, a metric family and a claimed direction. For every contrast, metric and key (an attack or an
evaluation set) and every seed that trained all cells of both groups:

* ``d_s``: the treatment group minus the control group (a group is the mean of its cells). Where outcomes are
  per example (accuracy, accuracy under attack, attack success), ``d_s`` is the mean over the examples that
  every cell of the contrast has an outcome for, paired example by example; its within-seed variance
  ``v_s`` = var(d_s,i) / n_s is the part of the uncertainty that more examples would shrink.
* effect = mean of ``d_s``; 95 % interval and p-value from the paired t-test over seeds (``scipy.stats``):
  every ``d_s`` already carries its examples' sampling noise, so the t interval covers both sources of
  variance, at any ratio of seed to example noise (``tests/test_claims.py`` checks the coverage). A
  two-level bootstrap over seeds and examples was rejected: with three seeds it resamples from 10 distinct
  seed sets and under-covers when the seeds differ more than the examples do.
* Holm's correction (``statsmodels``) over every row of a claim; the verdict is *supported* when the
  Holm-adjusted p is below ``alpha`` and the effect points the claimed way, *contradicted* when it points
  the other way, *inconclusive* otherwise. The corrected interval is the t interval at the row's Holm level
  (``alpha * p / p_holm``): it excludes 0 exactly when the verdict is not inconclusive.
* Power, for inconclusive rows (one-sample t power, ``statsmodels``, at the Bonferroni level of the claim's
  family, the level the last Holm step needs): the smallest effect the run could detect with 80 % power, the
  seeds needed to detect the observed effect, and (per-example metrics) the examples per seed needed with the
  present seeds, from the split of var(d_s) into seed variance and example variance v_s.

A row any of whose cells did not converge in one of its seeds (its training record's convergence check,
``advlm.convergence``) gets no verdict: *not converged*, with the cells and seeds in its note. A model at chance
looks robust (an attack cannot flip a constant prediction) and a still-learning one measures how fast a method
learns, not what it does; such rows leave the Holm family.

One seed gives no between-seed variance: the row is *inconclusive: needs ≥ 2 seeds* and shows the
within-seed bootstrap interval over examples (``scipy.stats.bootstrap``) of that one training run.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import artifacts
from .neurons.report import neuron_metrics
from .neurons.specialization import SPECIALIZATION

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
    "examples_needed",
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
    "neurons": tuple(Metric(name, better, False) for name, better in SPECIALIZATION.items()),
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
    ``probe.json`` (the specialization metrics)."""
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
    return outcomes


# --- one seed's difference -------------------------------------------------------------------------------


@dataclasses.dataclass
class SeedDifference:
    seed: int
    value: float  # treatment minus control
    within_var: float | None  # variance of ``value`` over resampled examples (None: not per example)
    n_examples: int | None
    per_example: np.ndarray | None  # d_i, for the one-seed bootstrap


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
        return SeedDifference(seed, float(np.mean(values["treatment"]) - np.mean(values["control"])), None, None, None)
    ids = None  # examples every cell has an outcome for (attack success: examples every cell had right)
    for series in (*values["treatment"], *values["control"]):
        present = series.dropna().index
        ids = present if ids is None else ids.intersection(present)
    if ids is None or len(ids) == 0:
        return None
    d = _group_mean(values["treatment"], ids) - _group_mean(values["control"], ids)
    within = float(np.var(d, ddof=1) / len(d)) if len(d) > 1 else float("nan")
    return SeedDifference(seed, float(d.mean()), within, len(d), d)


def combined(differences: list[SeedDifference], seed: int) -> SeedDifference:
    """The mean over several keys (the out-of-domain sets) of one seed's differences."""
    k = len(differences)
    return SeedDifference(
        seed,
        float(np.mean([d.value for d in differences])),
        sum(d.within_var for d in differences) / k**2,
        sum(d.n_examples for d in differences),
        None,
    )


# --- statistics ------------------------------------------------------------------------------------------


def t_interval(values: np.ndarray, level: float) -> tuple[float, float, float]:
    """(p, low, high) of the paired t-test over seeds (two-sided, H0: mean difference 0)."""
    from scipy import stats

    if np.ptp(values) == 0:  # identical differences: no spread to test against
        mean = float(values[0])
        return (1.0 if mean == 0 else 0.0), mean, mean
    result = stats.ttest_1samp(values, 0.0)
    interval = result.confidence_interval(confidence_level=level)
    return float(result.pvalue), float(interval.low), float(interval.high)


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


def power_note(differences: list[SeedDifference], effect: float, alpha: float, power: float) -> dict:
    """The smallest detectable effect, and the seeds and examples per seed needed to detect ``effect``."""
    from statsmodels.stats.power import TTestPower

    values = np.array([d.value for d in differences])
    sd = float(np.std(values, ddof=1))
    analysis = TTestPower()
    seeds = len(values)
    standardized = analysis.solve_power(nobs=seeds, alpha=alpha, power=power) if seeds >= 2 else math.inf
    out = {"detectable_effect": standardized * sd if sd > 0 else 0.0, "seeds_needed": None, "examples_needed": None}
    if effect == 0 or sd == 0:
        return out
    out["seeds_needed"] = _seeds_needed(abs(effect) / sd, alpha, power)
    within = [d.within_var for d in differences]
    if all(w is not None and np.isfinite(w) for w in within):
        # var(d_s) = seed variance + example variance / n: what is left when the examples are many
        example_var = float(np.mean([w * d.n_examples for w, d in zip(within, differences)]))
        seed_var = max(0.0, sd**2 - float(np.mean(within)))
        target = (abs(effect) / standardized) ** 2  # the variance of d_s at which the present seeds suffice
        out["examples_needed"] = math.ceil(example_var / (target - seed_var)) if target > seed_var else math.inf
    return out


def _seeds_needed(standardized_effect: float, alpha: float, power: float) -> float:
    """Seeds for ``power`` at ``alpha`` (at least 2); inf where the effect is too small for the solver."""
    from statsmodels.stats.power import TTestPower

    if standardized_effect < 1e-3:  # over a million seeds: say "no", not a number
        return math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a solver that did not converge is no answer
        try:
            seeds = float(
                np.squeeze(TTestPower().solve_power(effect_size=standardized_effect, alpha=alpha, power=power))
            )
        except Warning:
            return math.inf
    return max(2, math.ceil(seeds)) if math.isfinite(seeds) else math.inf


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
    """The word transformations a cell's training saw: its corpus augmenter (pre-training ``augmented``) and
    the attack of its input-space method."""
    seen = set()
    if cell["pretrain"] == "augmented":
        seen.add(AUGMENTER_TRANSFORMATIONS[experiment["augmenter"]])
    attack = experiment["method_attacks"].get(cell["method"])  # the input-space methods and their sweep points
    if attack:
        seen.add(ATTACK_TRANSFORMATIONS[attack])
    return seen


def exposure(experiment: dict, treatment: list[dict], control: list[dict], attack: str) -> str:
    """Whether the attack's transformation was in the training of the treatment, the control, both or neither."""
    transformation = ATTACK_TRANSFORMATIONS[attack]
    seen = [
        any(transformation in cell_transformations(experiment, cell) for cell in cells)
        for cells in (treatment, control)
    ]
    return {
        (True, True): "seen by both",
        (True, False): "seen by treatment",
        (False, True): "seen by control",
        (False, False): "unseen",
    }[tuple(seen)]


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
        for contrast in spec["contrasts"]:
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
    """Effect, interval, p and the power figures of one row; the verdict comes after Holm."""
    level = 1 - settings["alpha"]
    values = np.array([d.value for d in differences])
    examples = [d.n_examples for d in differences if d.n_examples is not None]
    base = {"n_seeds": len(values), "n_examples": min(examples) if examples else None}
    if len(values) == 0:
        return {**base, "verdict": "not run", "note": "no seed with outcomes for every cell"}
    effect = float(values.mean())
    if len(values) == 1:
        low, high = (
            bootstrap_interval(differences[0].per_example, level, settings["seed"])
            if differences[0].per_example is not None
            else (math.nan, math.nan)
        )
        return {
            **base,
            "effect": effect,
            "ci_low": low,
            "ci_high": high,
            "p": math.nan,
            "note": "needs ≥ 2 seeds; interval: examples of the one seed (this training run only)",
        }
    p, low, high = t_interval(values, level)
    return {**base, "effect": effect, "ci_low": low, "ci_high": high, "p": p, "_differences": differences}


def finish_family(rows: list[dict], direction: str, settings: dict) -> None:
    """Holm over the rows of one claim that have a p-value, then the verdicts, corrected intervals, power."""
    alpha = settings["alpha"]
    tested = [row for row in rows if not math.isnan(row.get("p", math.nan))]
    for row, adjusted in zip(tested, holm([row["p"] for row in tested])):
        row["p_holm"] = adjusted
        differences = row.pop("_differences")
        values = np.array([d.value for d in differences])
        row_alpha = alpha if row["p"] == 0 or adjusted == 0 else min(alpha, alpha * row["p"] / adjusted)
        _, row["corrected_low"], row["corrected_high"] = t_interval(values, 1 - row_alpha)
        row["verdict"] = verdict(row["effect"], adjusted, row["better"], direction, alpha)
        if row["verdict"] == "inconclusive":
            note = power_note(differences, row["effect"], alpha / len(tested), settings["power"])
            row.update(note)
            row["note"] = _needs(note, row["n_seeds"], settings["power"])
    for row in rows:
        row.pop("_differences", None)
        if row.get("verdict") is None:
            row["verdict"] = "inconclusive"


def verdict(effect: float, p_holm: float, better: str, direction: str, alpha: float) -> str:
    if p_holm >= alpha:
        return "inconclusive"
    improves = (effect > 0) == (better == "higher")
    return "supported" if improves == (direction == "better") else "contradicted"


def _needs(note: dict, seeds: int, power: float) -> str:
    if note["seeds_needed"] is None:
        return "no effect observed"
    seeds_needed = note["seeds_needed"]
    text = (
        f"needs more than a million seeds at {power * 100:g} % power"
        if math.isinf(seeds_needed)
        else f"needs {seeds_needed:,} seeds at {power * 100:g} % power"
    )
    examples = note["examples_needed"]
    if examples is not None:
        text += (
            f"; more examples cannot do it with {seeds} seeds (seed variance)"
            if math.isinf(examples)
            else f", or {examples:,} examples per seed with {seeds} seeds"
        )
    return text


def claims_table(outcomes: Outcomes, settings: dict, experiment: dict, unconverged: set = frozenset()) -> pd.DataFrame:
    """Every claim's rows: ``settings`` is the config's ``claims`` block; ``experiment`` says what was run
    (rules/common.smk ``claims_experiment``: datasets, ood, attacks, augmenter, method_attacks, models);
    ``unconverged``: the models whose training did not converge (unconverged_models)."""
    rows = []
    for claim, spec in settings["statements"].items():
        family = contrast_rows(outcomes, claim, spec, experiment, settings, unconverged)
        finish_family(family, spec["direction"], settings)
        rows += family
    return pd.DataFrame(rows, columns=COLUMNS)


# --- the forest plot -------------------------------------------------------------------------------------


def plot_forest(table: pd.DataFrame, path: str | Path) -> None:
    """Every tested row's effect with its 95 % interval (thick) and Holm-corrected interval (thin), one panel
    per claim; metrics where lower is better are drawn negated, so right of 0 is always "treatment better"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tested = table[table["effect"].notna()]
    claims = list(dict.fromkeys(tested["claim"])) or ["(no claim tested)"]
    heights = [max(1, (tested["claim"] == claim).sum()) for claim in claims]
    figure, axes = plt.subplots(
        len(claims), 1, figsize=(9, 1.2 + 0.28 * sum(heights)), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    colours = {"supported": "tab:green", "contradicted": "tab:red", "inconclusive": "tab:gray"}
    for axis, claim in zip(axes[:, 0], claims):
        part = tested[tested["claim"] == claim]
        sign = np.where(part["better"] == "lower", -1.0, 1.0)
        y = np.arange(len(part))[::-1]
        for low, high, width in (("corrected_low", "corrected_high", 1), ("ci_low", "ci_high", 4)):
            lows, highs = part[low].to_numpy(float) * sign, part[high].to_numpy(float) * sign
            axis.hlines(
                y,
                np.minimum(lows, highs),
                np.maximum(lows, highs),
                linewidth=width,
                colors=[colours.get(v, "tab:gray") for v in part["verdict"]],
                alpha=0.6,
            )
        axis.scatter(part["effect"].to_numpy(float) * sign, y, color="black", s=10, zorder=3)
        labels = [f"{r.dataset}: {r.contrast} | {r.metric} {r.key}" for r in part.itertuples()]
        axis.set_yticks(y, labels, fontsize=6)
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_title(claim, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel(
        "effect, oriented so that > 0 means the treatment is better (thick: 95 %, thin: Holm-corrected)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# --- the summary -----------------------------------------------------------------------------------------


def markdown(table: pd.DataFrame, settings: dict) -> str:
    """The claims for ``summary.md``: per claim its statement, the verdict counts, and one line per row with
    the effect, its 95 % interval, the Holm-corrected p, the verdict, n and what an inconclusive row needs."""
    lines = []
    for claim, part in table.groupby("claim", sort=False):
        counts = part["verdict"].value_counts()
        tally = ", ".join(
            f"{counts[v]} {v}"
            for v in ("supported", "contradicted", "inconclusive", "not converged", "not run")
            if v in counts
        )
        text = settings["statements"][claim].get("text")
        lines += [f"### {claim}", "", f"*{text}* " if text else "", f"Verdicts: {tally}.", ""]
        shown = part.assign(
            effect=part["effect"].map(_number),
            interval=[_interval(r.ci_low, r.ci_high) for r in part.itertuples()],
            p_holm=part["p_holm"].map(lambda p: "" if pd.isna(p) else f"{p:.3g}"),
            n=[_n(r.n_seeds, r.n_examples) for r in part.itertuples()],
            note=part["note"].fillna(""),
        )
        columns = ["dataset", "contrast", "metric", "key", "effect", "interval", "p_holm", "verdict", "n", "note"]
        if not part["exposure"].any():
            lines += [shown[columns].to_markdown(index=False), ""]
            continue
        # Robustness: attacks whose transformation the treatment trained on apart from those it never saw.
        seen = part["exposure"].isin(["seen by treatment", "seen by both"])
        for title, rows in (
            ("Attacks the treatment trained on", shown[seen]),
            ("Attacks the treatment never saw", shown[~seen]),
        ):
            if len(rows):
                lines += [f"{title}:", "", rows[[*columns[:4], "exposure", *columns[4:]]].to_markdown(index=False), ""]
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
