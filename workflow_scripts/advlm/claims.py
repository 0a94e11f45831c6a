"""The paper's claims as statistical contrasts: one row per dataset, contrast, metric and key, with its verdict.

A claim (config ``claims.statements``) is a list of contrasts between two groups of (pre-training variant,
method) cells, a metric family and a claimed direction. For every contrast, metric and key (an attack or an
evaluation set) and every seed that trained all cells of both groups, ``seed_difference`` pairs the treatment
group with the control group (a group is the mean of its cells), by example id where outcomes are per example;
``advlm.stats`` turns the seeds' differences into the effect, its interval, p, power and the verdict.

* One primary endpoint per claim and dataset (``primary_endpoint``: the statement's ``primary``) decides its
  verdict on that dataset; Holm's correction runs over the primary endpoints of all claims and datasets (the
  pre-specified rule: no pooling over datasets, each dataset's verdict stands on its own in one family), and
  separately over each claim's secondary rows. The corrected interval is the interval at the row's Holm level
  (``alpha * p / p_holm``): it excludes 0 exactly when the verdict is not inconclusive.
  A primary endpoint whose corrected interval lies inside the claim's smallest effect of interest, +-``delta``,
  is *no effect >= delta* (``advlm.equivalence``); its corrected interval then contains 0.
* Robustness outcomes per example come from the gathered attack rows: accuracy under the attack as run, attack
  success, and, exactly from the same rows (``advlm.attacks.budget``), accuracy under the attack capped at a
  sourced word budget (``claims.word_cap``) and words-to-flip censored at that cap.

A row any of whose cells did not converge in one of its seeds (its training record's convergence check,
``advlm.convergence``) gets no verdict: *not converged*, with the cells and seeds in its note. A model at chance
looks robust (an attack cannot flip a constant prediction) and a still-learning one measures how fast a method
learns, not what it does; such rows leave the Holm family.

A row the t-test cannot test gets no verdict but *not tested* and the reason: one seed gives no between-seed
variance (the row shows the within-seed bootstrap interval over examples, ``scipy.stats.bootstrap``, of that one
training run); identical differences in every seed up to rounding (discrete metrics on small sets) leave no
spread to test against; a NaN outcome has no value; an interval wider than the metric's range (the degrees of
freedom collapse where the examples' covariance is mostly noise) says nothing. Such rows stay in the table,
outside the Holm family. A seed left out because a cell lacks the outcome is named in the row's note.

The summary's prose, headline and forest plot of the table: ``advlm.claims_summary``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from . import artifacts, equivalence
from .attacks import budget
from .neurons.report import neuron_metrics
from .neurons.specialization import CAUSAL, SPECIALIZATION
from .stats import (
    SeedDifference,
    combined,
    detectable_difference,
    estimate,
    holm,
    holm_level,
    t_interval,
    verdict,
)

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
    "estimand",
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
    "note",
    "treatment",
    "control",
]


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    better: str  # "higher" or "lower": which way is better (more robust, more general, more specialized)
    per_example: bool
    bounds: tuple[float, float] = (0.0, 1.0)  # the metric's range: rates, shares, ECE, Jaccard overlaps

    @property
    def difference_range(self) -> tuple[float, float]:
        low, high = self.bounds
        return low - high, high - low

    @property
    def estimand(self) -> str:
        """The noise the row's interval counts, and the examples it is over where they change by seed."""
        if not self.per_example:
            return "seeds only: one value per model, so the test set's example noise is not in the interval"
        if self.name == "attack_success_rate":
            return (
                "seeds and examples; each seed's examples are those every cell classified correctly in that seed, "
                "a population that changes by seed"
            )
        return "seeds and examples"


FAMILIES = {
    "robustness": (
        Metric("accuracy_under_attack", "higher", True),
        Metric("attack_success_rate", "lower", True),
        Metric("capped_accuracy_under_attack", "higher", True),  # at claims.word_cap (advlm.attacks.budget)
        Metric("words_to_flip", "higher", True),  # censored at that cap, on [0, 1]
    ),
    "generalization": (Metric("accuracy", "higher", True), Metric("ece", "lower", False)),
    # selectivity and the causal test's ood_specific_drop: differences of two accuracies, in [-1, 1]
    "neurons": tuple(
        Metric(name, better, False, (0.0, 1.0) if name in SPECIALIZATION and name != "selectivity" else (-1.0, 1.0))
        for name, better in {**SPECIALIZATION, **CAUSAL}.items()
    ),
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


def load_outcomes(predictions=(), evaluations=(), attacks=(), probes=(), word_cap: str = "textdefender") -> Outcomes:
    """Outcomes from the workflow's per-model files: evaluate's ``<evalset>.predictions.csv`` (correct or not)
    and ``<evalset>.json`` (ECE), the gathered attack CSVs (robust: the model was right and the attack failed;
    success: the attack succeeded on an example the model had right, missing where it had it wrong; capped: robust
    under the attack capped at ``word_cap``, a key of ``advlm.attacks.budget.WORD_CAPS``; words to flip: censored
    at that cap) and ``probe.json`` (the specialization metrics and, for a fine-tuned model, the causal test's)."""
    cap = budget.WORD_CAPS[word_cap]
    outcomes = Outcomes()
    for path in predictions:
        model = artifacts.model_of(path)
        frame = pd.read_csv(path, dtype={"id": str})
        correct = (frame["prediction"] == frame["label"]).astype(float)
        outcomes.add(
            model, "accuracy", model["leaf"].removesuffix(".predictions"), pd.Series(correct.values, frame["id"])
        )
    for path in evaluations:
        model = artifacts.model_of(path)
        outcomes.add(model, "ece", model["leaf"], float(artifacts.read_json(path)["ece"]))
    for path in attacks:
        model = artifacts.model_of(path)
        frame = pd.read_csv(path, dtype={"id": str}, usecols=["id", *budget.REQUIRED])
        ids, outcome = frame["id"].to_numpy(), frame["outcome"]
        outcomes.add(
            model, "accuracy_under_attack", model["leaf"], pd.Series((outcome == "failure").astype(float).values, ids)
        )
        success = (outcome == "success").astype(float).where(outcome != "skipped")
        outcomes.add(model, "attack_success_rate", model["leaf"], pd.Series(success.values, ids))
        outcomes.add(model, "capped_accuracy_under_attack", model["leaf"], budget.capped_robust(frame, cap))
        outcomes.add(model, "words_to_flip", model["leaf"], budget.words_to_flip_score(frame, cap))
    for path in probes:
        model = artifacts.model_of(path)
        metrics = neuron_metrics(artifacts.read_json(path))
        for name in SPECIALIZATION:
            outcomes.add(model, name, "all", float(metrics[name]))
        for name in CAUSAL:
            if np.isfinite(metrics[name]):  # the reference has no classifier to ablate
                outcomes.add(model, name, "all", float(metrics[name]))
    return outcomes


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
    out = set()
    for path in train_logs:
        if not artifacts.read_json(path)["convergence"]["converged"]:
            model = artifacts.model_of(path)
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
                        "estimand": metric.estimand,
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
                    differences, left_out = _differences(
                        outcomes, dataset, treatment, control, seeds, metric, key, experiment
                    )
                    rows.append({**row, **_statistics(differences, metric, settings), "_left_out": left_out})
    return rows


def _differences(
    outcomes, dataset, treatment, control, seeds, metric, key, experiment
) -> tuple[list[SeedDifference], str]:
    """The seeds' differences, and a note naming each seed left out because a cell lacks the outcome."""
    out, left_out = [], []
    keys = experiment["ood"][dataset] if key == "ood_mean" else [key]
    for seed in seeds:
        parts = [seed_difference(outcomes, dataset, treatment, control, seed, metric, k) for k in keys]
        if all(part is not None for part in parts):
            out.append(combined(parts, seed) if key == "ood_mean" else parts[0])
            continue
        lacking = [
            f"{cell_name(cell)} has no {metric.name} ({k})"
            for k in keys
            for cell in (*treatment, *control)
            if outcomes.get(dataset, cell, seed, metric.name, k) is None
        ]
        left_out.append(f"seed {seed} left out: " + (", ".join(lacking) or "no example with every cell's outcome"))
    return out, "; ".join(left_out)


def _statistics(differences: list[SeedDifference], metric: Metric, settings: dict) -> dict:
    """Effect, interval and p of one row (``advlm.stats.estimate``); the verdict, the corrected interval and the
    power come after Holm."""
    examples = [d.n_examples for d in differences if d.n_examples is not None]
    base = {"n_seeds": len(differences), "n_examples": min(examples) if examples else None}
    if not differences:
        return {**base, "verdict": "not run", "note": "no seed with outcomes for every cell"}
    found = estimate(differences, 1 - settings["alpha"], settings["seed"], metric.difference_range)
    numbers = {"effect": found.effect, "ci_low": found.low, "ci_high": found.high, "p": found.p}
    if found.untested:
        return {**base, **numbers, "p": math.nan, "verdict": NOT_TESTED, "note": found.untested}
    return {**base, **numbers, "_variance": found.variance}


NOT_TESTED = "not tested"  # a row the t-test over seeds cannot test: its note says why


def finish_family(
    rows: list[dict], directions: dict[str, str], settings: dict, deltas: dict[str, float | None] | None = None
) -> None:
    """Holm over the rows of one family that have a p-value, then their verdicts (``directions``: claim -> the
    claimed direction; ``deltas``: claim -> its smallest effect of interest, for the primary endpoints, whose
    units it is in), Holm-corrected intervals and, for the inconclusive ones, the design figure at the family's
    Bonferroni level alpha / m (m: the family's tested rows), the level of Holm's first step: the detectable
    effect is that of the row with the smallest p, conservative for the others."""
    alpha = settings["alpha"]
    tested = [row for row in rows if not math.isnan(row.get("p", math.nan))]
    for row, adjusted in zip(tested, holm([row["p"] for row in tested])):
        row["p_holm"] = adjusted
        variance = row.pop("_variance")
        row_alpha = holm_level(alpha, row["p"], adjusted)
        _, row["corrected_low"], row["corrected_high"] = t_interval(row["effect"], variance, 1 - row_alpha)
        row["verdict"] = equivalence.with_equivalence(
            verdict(row["effect"], adjusted, row["better"], directions[row["claim"]], alpha),
            row["corrected_low"],
            row["corrected_high"],
            (deltas or {}).get(row["claim"]),
        )
        if row["verdict"] == "inconclusive":
            row["detectable_effect"] = detectable_difference(variance, alpha / len(tested), settings["power"])
            level = f"at α = {alpha / len(tested):.3g} (Holm's first step: {alpha:g} / {len(tested)} tested rows)"
            row["note"] = _needs(row["detectable_effect"], row["n_seeds"], settings["power"], level)
    for row in rows:
        row.pop("_variance", None)
        row["note"] = "; ".join(part for part in (row.get("note"), row.pop("_left_out", "")) if part)
        assert row.get("verdict") is not None, row  # every row is tested or says why not


def _needs(detectable: float, seeds: int, power: float, level: str) -> str:
    """The design figure of an inconclusive row (the power planned before the run: results/power.json). No post hoc
    power: plugging in the observed effect would only restate its p-value."""
    return (
        f"detectable at {power * 100:g} % power with {seeds} seeds {level}: |effect| ≥ {detectable:.3g}"
        if math.isfinite(detectable)
        else f"no effect is detectable at {power * 100:g} % power with {seeds} seeds {level}"
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
    deltas = {claim: spec.get("delta") for claim, spec in statements.items()}
    # across the claims; delta is in the units of each claim's primary endpoint
    finish_family([row for row in rows if row["endpoint"] == PRIMARY], directions, settings, deltas)
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
