"""Power planned before the run: for the configured seeds and examples, each claim's power to detect its smallest
effect of interest (``claims.statements.<claim>.delta``) and to rule out an effect of delta when there is none.

The variance of a claim's effect (the mean over seeds of the per-seed paired differences, ``advlm.claims``) is
planned from components measured in an earlier run (``resources/variance_components.yaml``, each with its source):

    var(effect; S seeds, n examples) = sd(n)^2 / S + shared * n0 / n

* ``sd``: the standard deviation over seeds of the per-seed paired difference at the source's n0 paired examples.
  It holds the training runs' noise and the examples' noise that differs between seeds. Planned at the source's
  value for n >= n0 (conservative: more examples can only shrink the examples' part) and scaled by sqrt(n0 / n)
  for n < n0 (as if all of it were the examples' noise: conservative again).
* ``shared``: the examples' noise every seed shares (the same test set and attack sample for every seed), which
  more seeds do not shrink (``advlm.stats.Variance.examples``); 0 where the source did not separate it.

The test is the claims' t-test at the family's Bonferroni level, alpha / m (m: the claims whose models the
experiment trains, times its datasets: Holm's family of primary endpoints, whose first step needs alpha / m; the
plan is the first dataset's), with S - 1 degrees of
freedom (the claims' Satterthwaite df is at least about that: conservative). Detection: exact noncentral-t power at
an effect of delta (``advlm.stats.t_power``: statsmodels). Equivalence: the probability, when the true effect is 0,
that the interval at level 1 - alpha / m lies inside (-delta, +delta) and contains 0 (the verdict 'no effect >=
delta', ``advlm.equivalence``), an integral over the chi-square distribution of the estimated variance (scipy).
``tests/test_power.py`` checks both against a simulation of the claims' own procedure.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import yaml

from .stats import t_power


@dataclasses.dataclass(frozen=True)
class Components:
    """A claim's primary endpoint's variance components, as measured in ``source``."""

    metric: str
    key: str
    sd: float  # over seeds, of the per-seed paired difference, at `examples` paired examples
    examples: int | None  # paired examples per seed in the source (None: a scalar metric)
    sample_size: int | None  # attack.sample_size of the source (robustness): examples scale with it
    source: str
    shared: float = 0.0  # the examples' variance every seed shares, at `examples`

    def variance(self, seeds: int, examples: int | None) -> float:
        """var(effect) at ``seeds`` seeds and ``examples`` paired examples per seed (the module's formula)."""
        if self.examples is None or examples is None:
            return self.sd**2 / seeds + self.shared
        shrink = max(1.0, self.examples / examples)
        return self.sd**2 * shrink / seeds + self.shared * self.examples / examples


def load_components(path: str | Path) -> dict[str, Components]:
    """resources/variance_components.yaml: ``claims: {claim: {metric, key, sd, examples, sample_size, shared,
    source}}``; a missing or extra key is an error naming the claim."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    fields = {field.name for field in dataclasses.fields(Components)}
    required = {field.name for field in dataclasses.fields(Components) if field.default is dataclasses.MISSING}
    out = {}
    for claim, entry in (document.get("claims") or {}).items():
        unknown, missing = set(entry) - fields, required - set(entry)
        if unknown or missing:
            raise ValueError(f"{path}: claims.{claim}: unknown keys {sorted(unknown)}, missing {sorted(missing)}")
        out[claim] = Components(**entry)
    return out


def detection_power(delta: float, variance: float, seeds: int, alpha: float) -> float:
    """Power of the two-sided t-test over ``seeds`` seeds at ``alpha`` when the true effect is ``delta``."""
    if seeds < 2:
        return 0.0
    return t_power(delta / math.sqrt(seeds * variance), seeds, alpha)


def equivalence_power(delta: float, variance: float, seeds: int, alpha: float) -> float:
    """P(the 1 - alpha interval lies inside (-delta, delta) and contains 0) when the true effect is 0: the estimate
    is N(0, variance), its estimated variance variance * chi2(df) / df (df = seeds - 1), independent of it."""
    from scipy import integrate, stats

    if seeds < 2:
        return 0.0
    df = seeds - 1
    critical = stats.t.isf(alpha / 2, df)
    se = math.sqrt(variance)

    def inside(quantile: float) -> float:
        half = critical * se * math.sqrt(stats.chi2.ppf(quantile, df) / df)  # the interval's half-width
        bound = min(half, delta - half)  # |estimate| below both: contains 0 and inside +-delta
        return max(0.0, 2 * stats.norm.cdf(bound / se) - 1)

    return float(integrate.quad(inside, 0, 1, limit=200)[0])


def planned_examples(components: Components, family: str, sample_size: int) -> int | None:
    """Paired examples per seed the run will have: robustness scales the source's with attack.sample_size (each
    model attacks a prefix up to its sample_size-th correct example, so the shared prefix is longer); the
    evaluation sets are fixed by the data; scalar metrics have none."""
    if components.examples is None:
        return None
    if family == "robustness" and components.sample_size:
        return max(1, round(components.examples * sample_size / components.sample_size))
    return components.examples


def plan(settings: dict, experiment: dict, components: dict[str, Components], seeds: int, sample_size: int) -> dict:
    """Per claim of ``settings["statements"]`` (the config's ``claims``; ``experiment``: rules/common.smk
    ``claims_experiment``): its delta, primary endpoint, the planned seeds and examples, and its power to detect
    delta and to rule it out at the family's Bonferroni level; or why there is no plan (not run here, no delta,
    no components for its primary endpoint)."""
    from .claims import primary_endpoint

    statements = settings["statements"]
    trained = {(m["dataset"], m["pretrain"], m["method"]) for m in experiment["models"]}
    run = [claim for claim, spec in statements.items() if _trains(spec, experiment["datasets"], trained)]
    alpha = settings["alpha"] / max(1, len(run) * len(experiment["datasets"]))  # one primary per claim and dataset
    out = {}
    for claim, spec in statements.items():
        dataset = experiment["datasets"][0]
        contrast, metric, key = primary_endpoint(spec, experiment, dataset)
        entry = {"metric": metric, "key": key, "contrast": contrast, "delta": spec.get("delta")}
        found = components.get(claim)
        reason = (
            "not run: the experiment does not train its primary contrast's models"
            if claim not in run
            else "no delta: no effect size sourced for it"
            if spec.get("delta") is None
            else "no variance components for it"
            if found is None
            else f"the variance components are of {found.metric} ({found.key}), not of its primary endpoint"
            if (found.metric, found.key) != (metric, key)
            else ""
        )
        if reason:
            out[claim] = {**entry, "planned": False, "reason": reason}
            continue
        examples = planned_examples(found, spec["family"], sample_size)
        variance = found.variance(seeds, examples)
        out[claim] = {
            **entry,
            "planned": True,
            "delta_source": spec.get("delta_source", ""),
            "seeds": seeds,
            "examples": examples,
            "alpha": alpha,
            "effect_sd": math.sqrt(variance),
            "power_detect": detection_power(spec["delta"], variance, seeds, alpha),
            "power_equivalence": equivalence_power(spec["delta"], variance, seeds, alpha),
            "components_source": found.source,
        }
    return out


def _trains(spec: dict, datasets: list[str], trained: set) -> bool:
    """Whether the experiment trains every cell of the claim's primary contrast, for every dataset."""
    contrast = spec["contrasts"][(spec.get("primary") or {}).get("contrast", 0)]
    cells = [cell.split("/") for cell in (*contrast["treatment"], *contrast["control"])]
    return all((dataset, pretrain, method) in trained for dataset in datasets for pretrain, method in cells)


def describe(planned: dict, power: float) -> str:
    """The plan in a few lines, printed before the first job."""
    lines = [f"Power planned before the run at each claim's delta (decidable: {power * 100:g} % both ways):"]
    for claim, entry in planned.items():
        if not entry["planned"]:
            lines.append(f"  {claim}: no plan ({entry['reason']})")
            continue
        n = f"{entry['seeds']} seeds" + (f" x {entry['examples']} examples" if entry["examples"] else "")
        lines.append(
            f"  {claim}: delta {entry['delta']:g} on {entry['metric']} ({entry['key']}), {n}, alpha "
            f"{entry['alpha']:.3g}: power to detect delta {entry['power_detect']:.2f}, to rule it out "
            f"{entry['power_equivalence']:.2f}"
        )
    return "\n".join(lines)


def write_plan(planned: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(planned, indent=2) + "\n", encoding="utf-8")


def plan_run(config: dict, experiment: dict, components_path: str | Path, out_path: str | Path) -> str:
    """The plan of a run's configuration (``config``: the whole config; ``experiment``: ``claims_experiment``),
    written to ``out_path`` (results/power.json); returns its description for the log."""
    planned = plan(
        config["claims"],
        experiment,
        load_components(components_path),
        len(config["finetune"]["seeds"]),
        config["attack"]["sample_size"],
    )
    write_plan({"components": str(components_path), "claims": planned}, out_path)
    return describe(planned, config["claims"]["power"])
