"""Method points (advlm.plan.points): each configured method and each point of its sweep is a model with a readable
id, its parameters the method's with the swept values set; advaug's points share example sets where they can."""

import copy
import re

from smk import config_with

from advlm.plan import checks, points, targets, wildcards

SWEEP = {
    "pgd": [{"epsilon": 0.1, "step_size": 0.04}, {"epsilon": 0.35, "step_size": 0.15}],  # the second: as configured
    "a2t": {"share": [0.2, 0.3]},  # the default experiment trains share 0.05
    "advaug": {"weight": [0.5], "share": [0.25, 0.5]},  # share 0.5 as configured: weight alone changes
}


def test_sweep_points_are_models_with_readable_ids():
    config = config_with()
    config["finetune"]["method_params"]["advaug"]["share"] = 0.5  # the configured share, one of SWEEP's points
    unswept = targets.model_ids(copy.deepcopy(config))
    config["finetune"]["sweep"] = SWEEP
    checks.check_config(config)
    added_points = ["pgd-epsilon=0.1-step_size=0.04", "a2t-share=0.2", "a2t-share=0.3"]
    added_points += ["advaug-weight=0.5-share=0.25", "advaug-weight=0.5"]  # ids name the changed parameters only
    added = [f"rotten_tomatoes/none/{point}/seed{seed}" for point in added_points for seed in (1, 2, 3)]
    assert sorted(targets.model_ids(config)) == sorted(unswept + added)
    # a point's parameters: the method's as configured, its values set; an unswept model's are unchanged
    assert points.finetune_method_params(config, "pgd-epsilon=0.1-step_size=0.04") == {
        **config["finetune"]["method_params"]["pgd"],
        "epsilon": 0.1,
        "step_size": 0.04,
    }
    assert points.finetune_method_params(config, "pgd") == config["finetune"]["method_params"]["pgd"]
    assert points.swept_values(config, "pgd") == {"epsilon": 0.35, "step_size": 0.15}
    # advaug: a point that changes the attacked share has its own examples; weight alone shares the configured ones
    assert points.advaug_examples_name(config, "advaug-weight=0.5-share=0.25") == "adversarial-share=0.25"
    assert points.advaug_examples_name(config, "advaug-weight=0.5") == "adversarial"
    assert sorted(points.advaug_examples(config)) == ["adversarial", "adversarial-share=0.25"]
    experiment = targets.claims_experiment(config)
    assert experiment["method_attacks"]["a2t-share=0.2"] == "a2t"
    assert experiment["points"]["a2t-share=0.3"] == {"method": "a2t", "values": {"share": 0.3}}
    assert re.fullmatch(wildcards.wildcard_patterns(config)["method"], "pgd-epsilon=0.1-step_size=0.04")
    assert not re.fullmatch(wildcards.wildcard_patterns(config)["method"], "pgd-epsilon=0x1-step_size=0.04")


def test_sweeping_one_more_parameter_renames_no_point_and_equal_values_share_one():
    """Issue 22: pgd-epsilon=0.1 keeps its id (and its trained models) when steps is swept too; 1 and 1.0 are one
    point (tests/test_plan_checks.py: values that print alike but differ are rejected)."""
    one = config_with(finetune__sweep={"pgd": {"epsilon": [0.1, 0.35]}})  # 0.35: pgd as configured
    two = config_with(finetune__sweep={"pgd": {"epsilon": [0.1, 0.35], "steps": [3, 5]}})  # steps 3 as configured
    first, second = set(targets.model_ids(one)), set(targets.model_ids(two))
    assert first < second
    assert {m.split("/")[2] for m in second - first} == {"pgd-steps=5", "pgd-epsilon=0.1-steps=5"}
    equal = config_with(finetune__sweep={"pgd": [{"epsilon": 1}, {"epsilon": 1.0}]})
    assert [p for p in points.method_points(equal) if p != "pgd" and p.startswith("pgd")] == ["pgd-epsilon=1"]


def test_a_method_point_knows_its_method_and_parameters():
    config = config_with(finetune__sweep={"a2t": {"share": [0.2]}})
    assert points.point_method(config, "a2t-share=0.2") == "a2t"
    assert points.point_method(config, "pretrained") == "pretrained"  # the neuron probes' reference
    assert points.point_params(config, "a2t-share=0.2") == points.method_params(config, "a2t") | {"share": 0.2}
    assert points.point_id("pgd", {"epsilon": 1.0, "norm": "l2", "random_init": True}) == (
        "pgd-epsilon=1-norm=l2-random_init=true"
    )
    assert points.sweep_points({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
