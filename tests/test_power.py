"""The power planned before a run (advlm/power.py) against a simulation of the claims' own procedure, the plan's
reasons and file, and the equivalence verdict (advlm/equivalence.py) at and around +-delta."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from advlm import equivalence, power, stats
from advlm.stats import SeedDifference

ALPHA = 0.05 / 2  # a family of two claims: the Bonferroni level the plan assumes


def claims_verdict(differences, delta, alpha=ALPHA, direction="better"):
    """The verdict the claims stage gives a primary endpoint alone in its family: its interval at 1 - alpha, the
    t-test's significance verdict, then the equivalence verdict against delta."""
    variance = stats.effect_variance(differences)
    effect = float(np.mean([d.value for d in differences]))
    p, low, high = stats.t_interval(effect, variance, 1 - alpha)
    return equivalence.with_equivalence(stats.verdict(effect, p, "higher", direction, alpha), low, high, delta)


def simulate_scalar(effect, sd, seeds, repetitions, rng):
    """Per-seed differences d_s ~ N(effect, sd^2), as the claims stage receives them for a scalar metric."""
    draws = rng.normal(effect, sd, (repetitions, seeds))
    return [[SeedDifference(s, float(v), None, None) for s, v in enumerate(row, 1)] for row in draws]


@pytest.mark.parametrize("seeds, sd", [(3, 0.01), (5, 0.025), (8, 0.03)])
def test_planned_power_matches_a_simulation_of_the_claims_test(seeds, sd):
    delta, repetitions, rng = 0.05, 4000, np.random.default_rng(seeds)
    variance = sd**2 / seeds
    detect = power.detection_power(delta, variance, seeds, ALPHA)
    rule_out = power.equivalence_power(delta, variance, seeds, ALPHA)
    at_delta = [claims_verdict(d, delta) for d in simulate_scalar(delta, sd, seeds, repetitions, rng)]
    at_zero = [claims_verdict(d, delta) for d in simulate_scalar(0.0, sd, seeds, repetitions, rng)]
    margin = 3.5 * math.sqrt(0.25 / repetitions)  # Monte Carlo error
    assert np.mean([v in ("supported", "contradicted") for v in at_delta]) == pytest.approx(detect, abs=margin)
    assert np.mean([v == equivalence.NO_EFFECT for v in at_zero]) == pytest.approx(rule_out, abs=margin)
    assert 0 < rule_out < 1 and 0 < detect < 1  # the cases are informative, neither sure nor hopeless


def test_planned_power_is_conservative_for_the_crossed_seed_by_example_design():
    """Per-example differences d_si = effect + a_s + b_i + e_si over examples every seed shares, through the claims'
    crossed-variance interval (Satterthwaite df >= seeds - 1): the plan, at seeds - 1 df, is at most a little above
    the simulated power and below it by at most the interval's extra degrees of freedom (here 0.58 planned, 0.755
    simulated: the interval, at df well above 5, detects more often than the plan promises)."""
    seeds, examples, delta, repetitions = 6, 60, 0.05, 600
    seed_sd, example_sd, noise_sd = 0.02, 0.08, 0.15
    rng = np.random.default_rng(7)
    components = power.Components(
        "m", "k", math.sqrt(seed_sd**2 + noise_sd**2 / examples), examples, None, "simulation", example_sd**2 / examples
    )
    variance = components.variance(seeds, examples)
    ids = [str(i) for i in range(examples)]

    def run(effect):
        b = rng.normal(0, example_sd, examples)  # the examples' part every seed shares
        out = []
        for seed in range(1, seeds + 1):
            d = effect + rng.normal(0, seed_sd) + b + rng.normal(0, noise_sd, examples)
            out.append(SeedDifference(seed, float(d.mean()), examples, (pd.Series(d, ids),)))
        return out

    detected = np.mean([claims_verdict(run(delta), delta) in ("supported",) for _ in range(repetitions)])
    ruled_out = np.mean([claims_verdict(run(0.0), delta) == equivalence.NO_EFFECT for _ in range(repetitions)])
    planned_detect = power.detection_power(delta, variance, seeds, ALPHA)
    planned_rule_out = power.equivalence_power(delta, variance, seeds, ALPHA)
    margin = 3.5 * math.sqrt(0.25 / repetitions)
    assert planned_detect - margin <= detected <= planned_detect + 0.2
    assert planned_rule_out - margin <= ruled_out <= planned_rule_out + 0.2


def test_variance_plan_is_conservative_in_the_examples():
    components = power.Components("m", "k", 0.03, 60, 50, "test", shared=0.0001)
    assert components.variance(4, 60) == pytest.approx(0.03**2 / 4 + 0.0001)
    assert components.variance(4, 120) == pytest.approx(0.03**2 / 4 + 0.0001 / 2)  # sd held, shared halves
    assert components.variance(4, 30) == pytest.approx(0.03**2 * 2 / 4 + 0.0001 * 2)  # fewer: all of sd scales
    assert power.planned_examples(components, "robustness", 100) == 120  # the prefix grows with the sample
    assert power.planned_examples(components, "generalization", 100) == 60
    assert power.detection_power(0.05, 0.0001, 1, ALPHA) == 0.0 == power.equivalence_power(0.05, 0.0001, 1, ALPHA)
    more = [power.detection_power(0.05, 0.03**2 / s, s, ALPHA) for s in (3, 5, 10)]
    assert more == sorted(more) and more[-1] > 0.98


def test_plan_of_a_configuration(tmp_path):
    spec = {"family": "robustness", "contrasts": [{"treatment": ["none/a2t"], "control": ["none/base"]}]}
    statements = {
        "planned": {**spec, "delta": 0.05, "delta_source": "a table", "primary": {"metric": "accuracy_under_attack"}},
        "no_delta": {**spec, "primary": {"metric": "accuracy_under_attack"}},
        "other_metric": {**spec, "delta": 0.05, "primary": {"metric": "words_to_flip"}},  # not the components' endpoint
        "untrained": {**spec, "delta": 0.05, "contrasts": [{"treatment": ["none/dne"], "control": ["none/base"]}]},
    }
    experiment = {
        "datasets": ["rt"],
        "ood": {"rt": []},
        "attacks": ["pwws"],
        "models": [{"dataset": "rt", "pretrain": "none", "method": m} for m in ("base", "a2t")],
    }
    found = power.Components("accuracy_under_attack", "pwws", 0.02, 73, 60, "a run")
    components = {name: found for name in ("planned", "no_delta", "other_metric")}
    settings = {"alpha": 0.05, "power": 0.8, "statements": statements}
    planned = power.plan(settings, experiment, components, seeds=6, sample_size=120)
    entry = planned["planned"]
    assert entry["planned"] and entry["examples"] == 146 and entry["seeds"] == 6
    assert entry["alpha"] == pytest.approx(0.05 / 3)  # three of the four claims train their models
    assert entry["power_detect"] == pytest.approx(power.detection_power(0.05, 0.02**2 / 6, 6, 0.05 / 3))
    assert "no delta" in planned["no_delta"]["reason"]
    assert "not of its primary endpoint" in planned["other_metric"]["reason"]
    assert planned["untrained"]["reason"].startswith("not run")
    text = power.describe(planned, 0.8)
    assert "planned: delta 0.05 on accuracy_under_attack (pwws), 6 seeds x 146 examples" in text
    power.write_plan({"claims": planned}, tmp_path / "results" / "power.json")
    assert json.loads((tmp_path / "results" / "power.json").read_text())["claims"]["planned"]["planned"] is True


def test_the_shipped_components_name_the_default_primaries():
    """resources/variance_components.yaml loads, each entry is of its claim's primary endpoint by default, and every
    claim with a delta has one (a claim without one, embedding_space_neurons_cause, is planned as 'no delta')."""
    import yaml
    from smk import ROOT

    components = power.load_components(ROOT / "resources" / "variance_components.yaml")
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    defaults = schema["properties"]["claims"]["properties"]["statements"]["default"]
    assert {claim for claim, spec in defaults.items() if spec.get("delta") is not None} <= set(components)
    assert set(components) <= set(defaults)
    for claim in components:
        assert components[claim].metric == defaults[claim]["primary"]["metric"], claim
        assert components[claim].sd > 0 and components[claim].source


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (-0.049, 0.049, equivalence.NO_EFFECT),  # just inside
        (-0.05, 0.02, "inconclusive"),  # touches -delta: an effect of delta is not ruled out
        (-0.02, 0.05, "inconclusive"),  # touches +delta
        (-0.0499999, 0.0499999, equivalence.NO_EFFECT),
        (-0.051, 0.0, "inconclusive"),  # crosses
        (-0.01, 0.06, "inconclusive"),
    ],
)
def test_equivalence_verdict_at_and_around_delta(low, high, expected):
    assert equivalence.with_equivalence("inconclusive", low, high, 0.05) == expected


def test_equivalence_never_overrides_a_significant_or_missing_verdict():
    assert equivalence.with_equivalence("supported", 0.01, 0.02, 0.05) == "supported"  # smaller than delta, but real
    assert equivalence.with_equivalence("contradicted", -0.02, -0.01, 0.05) == "contradicted"
    assert equivalence.with_equivalence("inconclusive", -0.01, 0.01, None) == "inconclusive"  # no delta sourced
    assert equivalence.with_equivalence("inconclusive", math.nan, math.nan, 0.05) == "inconclusive"
    with pytest.raises(ValueError, match="delta must be positive"):
        equivalence.with_equivalence("inconclusive", -0.01, 0.01, 0.0)


def test_variance_components_of_a_finished_run(tmp_path):
    """benchmarks/variance_components.py measures sd over seeds of the primary's per-seed difference from the
    gathered attack rows, in the form the plan reads back."""
    import importlib.util

    from smk import ROOT

    spec = importlib.util.spec_from_file_location("variance_components", ROOT / "benchmarks/variance_components.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = np.random.default_rng(3)
    differences = []
    for seed in (1, 2, 3):
        robust = {}
        for method in ("base", "advaug", "a2t"):
            words = rng.integers(1, 12, 40)  # every text 20 visible words: TextDefender's cap is 6 words
            outcome = np.where(words > 9, "failure", "success")
            folder = tmp_path / "attacks" / "rotten_tomatoes" / "none" / method / f"seed{seed}"
            folder.mkdir(parents=True)
            pd.DataFrame({"id": [str(i) for i in range(40)], "outcome": outcome, "words_perturbed": words}).assign(
                visible_words=20, num_queries=100
            ).to_csv(folder / "pwws.csv", index=False)
            (folder / "pwws.json").write_text(json.dumps({"sample_size": 40}))
            robust[method] = (words > 6).astype(float)
        differences.append(((robust["advaug"] + robust["a2t"]) / 2 - robust["base"]).mean())
    config = script.load_config([ROOT / "config.yaml", ROOT / "experiments" / "decide_cpu.yaml"])
    found = script.components(tmp_path, config, "a test run")
    assert list(found) == ["input_space_robustness"]  # the only claim whose models the run trained
    entry = found["input_space_robustness"]
    assert entry["sd"] == pytest.approx(np.std(differences, ddof=1), abs=1e-5)
    assert entry["examples"] == 40 and entry["sample_size"] == 40 and entry["metric"] == "capped_accuracy_under_attack"
    path = tmp_path / "components.yaml"
    path.write_text(__import__("yaml").safe_dump({"claims": found}))
    assert power.load_components(path)["input_space_robustness"].sd == entry["sd"]


def test_the_claims_table_gives_the_equivalence_verdict_to_primary_rows_only():
    """No effect, many examples, quiet seeds: the primary endpoint's corrected interval lies inside +-0.1; the
    secondary rows of the same claim, in other units, keep 'inconclusive'; without a delta the primary does too."""
    from test_claims import ROBUSTNESS, SETTINGS, experiment, simulate

    from advlm import claims

    outcomes = simulate(0.0, seeds=4, examples=2000, seed_sd=0.002)
    for key, value in list(outcomes.values.items()):  # the capped metric: the same outcomes, for the test
        outcomes.values[(*key[:4], "capped_accuracy_under_attack", key[5])] = value
    statement = {**ROBUSTNESS, "primary": {"metric": "capped_accuracy_under_attack"}}
    frame = claims.claims_table(
        outcomes, {**SETTINGS, "statements": {"claim": {**statement, "delta": 0.1}}}, experiment()
    )
    primary = frame[frame["endpoint"] == "primary"].iloc[0]
    assert primary["verdict"] == equivalence.NO_EFFECT
    assert -0.1 < primary["corrected_low"] <= 0 <= primary["corrected_high"] < 0.1
    secondary = frame[(frame["endpoint"] == "secondary") & (frame["metric"] == "accuracy_under_attack")].iloc[0]
    assert secondary["verdict"] == "inconclusive"
    without = claims.claims_table(outcomes, {**SETTINGS, "statements": {"claim": statement}}, experiment())
    assert without[without["endpoint"] == "primary"].iloc[0]["verdict"] == "inconclusive"
