"""The attack catalog (advlm/attacks/catalog.py) is the one description of the recipes: the schema, the rules'
resource inputs, the recorded resource identity, the calibration and the claims' transformations agree with it."""

import ast
import dataclasses
import json

import yaml
from smk import ROOT
from test_workflow import _common, _config

from advlm import embeddings
from advlm.attacks import catalog
from advlm.attacks.resources import AttackResources
from advlm.plan import attacks as planned_attacks

CATALOG = ROOT / "workflow_scripts" / "advlm" / "attacks" / "catalog.py"


def _schema():
    return yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())["properties"]


def test_the_catalog_imports_nothing_heavy():
    """The Snakefile loads it on its own (rules/common.smk), so it may import only the standard library's basics."""
    imported = set()
    for node in ast.walk(ast.parse(CATALOG.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    assert imported <= {"__future__", "dataclasses", "types"}


def test_the_schema_names_the_recipes_and_their_default_options():
    attack = _schema()["attack"]["properties"]
    names = set(catalog.BY_NAME)
    assert set(attack["recipes"]["items"]["enum"]) == names
    advaug = _schema()["finetune"]["properties"]["method_params"]["properties"]["advaug"]
    assert set(advaug["properties"]["attack"]["enum"]) == names
    options = attack["options"]["properties"]
    assert set(options) == {recipe.name for recipe in catalog.RECIPES if recipe.options}
    for name, spec in options.items():
        assert {key: option["default"] for key, option in spec["properties"].items()} == dict(
            catalog.recipe(name).options
        ), name


def test_the_default_experiment_writes_out_the_catalogs_options():
    """config.yaml spells the recipes' options out for its readers: they are the catalog's defaults."""
    options = yaml.safe_load((ROOT / "config.yaml").read_text())["attack"]["options"]
    assert {name: dict(catalog.recipe(name).options) for name in options} == options


def test_the_schema_embedding_defaults_are_the_code_defaults():
    embedding = _schema()["attack"]["properties"]["embedding"]["properties"]
    assert {key: spec["default"] for key, spec in embedding.items()} == embeddings.DEFAULTS


def test_resources_follow_the_catalog(tmp_path):
    """The rules' inputs of each attack and the resources recorded beside its results are the ones the catalog
    says it needs (the masked LM given as a directory, so that both name it)."""
    common, config = _common(), _config()
    assert planned_attacks.catalog is catalog and catalog.__file__ == str(CATALOG)  # the rules plan with this file
    (tmp_path / "mlm").mkdir()
    config["attack"]["masked_lm"] = str(tmp_path / "mlm")
    resources = AttackResources(tmp_path, masked_lm=str(tmp_path / "mlm"))

    def needed(recipe):  # the counter-fitted directory holds the vectors and the encoder's calibration
        return {
            name
            for name, needs in (
                ("counterfitted", recipe.embedding or recipe.sentence_encoder),
                ("sentence_encoder", recipe.sentence_encoder),
                ("masked_lm", recipe.masked_lm),
            )
            if needs
        }

    assert needed(catalog.recipe("pwws")) == set()
    assert needed(catalog.recipe("a2t")) == {"counterfitted", "sentence_encoder"}
    assert needed(catalog.recipe("bae")) == {"counterfitted", "sentence_encoder", "masked_lm"}
    for recipe in catalog.RECIPES:
        inputs = common.attack_inputs(config, recipe.name, 1)
        assert set(inputs) == set(resources.describe(recipe.name)) == needed(recipe), recipe.name
        assert ("masked_lm" in common.attack_recipe_params(config, recipe.name)) == recipe.masked_lm


def test_the_attackers_masked_lm_is_a_pretraining_run_of_its_own(tmp_path):
    common, config = _common(), _config()
    assert config["attack"]["masked_lm"] == "attacker"
    # one run, whatever the seed of the attacked model
    assert {common.attack_inputs(config, "bae", seed)["masked_lm"] for seed in (1, 2)} == {
        "results/pretrain/attacker/shared/model"
    }
    attacker, clean = (
        common.pretrain_params(config, "attacker", "shared"),
        common.pretrain_params(config, "clean", "seed1"),
    )
    assert attacker == clean | {"seed": config["attack"]["masked_lm_seed"]} and attacker["seed"] != clean["seed"]
    # its corpus is other text than any victim's: IMDB's train split, not Rotten Tomatoes'
    assert common.corpus_paths(config, "attacker") == ["results/data/imdb/train.jsonl"]
    assert common.corpus_paths(config, "clean") == ["results/data/rotten_tomatoes/train.jsonl"]
    # no victim starts from it: fine-tuning starts from the variants' models only
    starts = {
        path
        for variant in config["pretrain"]["variants"]
        for seed in config["finetune"]["seeds"]
        for path in common.start_model_inputs(config, variant, seed)
    }
    assert not any(path.startswith("results/pretrain/attacker") for path in starts)
    # the attack's record names the masked LM's pre-training run
    model = tmp_path / "attacker" / "shared" / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights")
    log = {"model_source": "results/resources/minilm", "corpus_size": 900, "provenance": {"seed": 31}}
    log |= {"corpus_files": ["results/data/imdb/train.jsonl"], "corpus_sha256": "ab" * 32}
    log |= {"heldout_loss_before": 11.0, "heldout_loss_after": 5.0}
    (tmp_path / "attacker" / "shared" / "pretrain_log.json").write_text(json.dumps(log))
    identity = AttackResources(tmp_path, masked_lm=str(model)).describe("bert-attack")["masked_lm"]
    assert identity["pretraining"] == {
        "run": "attacker/shared",
        "seed": 31,
        **{k: v for k, v in log.items() if k != "provenance"},
    }
    assert identity["digest"]


def test_calibration_covers_every_sentence_encoder():
    for recipe in catalog.RECIPES:
        assert (recipe.calibration is None) == (recipe.sentence_encoder is None), recipe.name
        assert recipe.calibration in (None, "equal_error_rate", "textfooler_ratio", "original"), recipe.name
        assert recipe.sentence_encoder is None or recipe.sentence_encoder.metric in ("angular", "cosine")
        # a faithful recipe has no stand-ins; each variant's stand-ins match the resources it needs
        assert bool(recipe.stands_in_for) == (
            recipe.embedding or recipe.masked_lm or recipe.pos_tagger or recipe.sentence_encoder is not None
        ), recipe.name
    assert catalog.recipe("textfooler").calibration == "equal_error_rate"  # what textfooler_ratio scales
    assert dataclasses.asdict(catalog.recipe("a2t").sentence_encoder)["threshold"] == 0.9


def test_the_claims_transformations_are_the_catalogs():
    from advlm import claims

    assert {recipe.name: recipe.transformation for recipe in catalog.RECIPES} == claims.ATTACK_TRANSFORMATIONS
