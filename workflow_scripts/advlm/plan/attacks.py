"""The attacks of an experiment: which recipes run (the attack stage's, advaug's and a2t's), how many examples each
attacks, what its jobs depend on and the resources they read, as the attack catalog (advlm/attacks/catalog.py)
says."""

from pathlib import Path

from ..attacks import catalog
from .params import stage_params
from .paths import MODEL, pretrain_dir
from .points import advaug_examples

# attack.masked_lm values that the workflow's own continued pre-training builds (results/pretrain/<name>/<run>/model)
MASKED_LM_RUNS = ("attacker", "clean", "augmented")


def attacks_run(config):
    """Every attack recipe the experiment runs: the attack stage's, advaug's and the a2t method's."""
    methods = config["finetune"]["methods"]
    return sorted(
        {
            *config["attack"]["recipes"],
            *(["a2t"] if "a2t" in methods else []),
            *(examples["attack"] for examples in advaug_examples(config).values()),
        }
    )


def masked_lm_used(config):
    """Whether an attack that runs (attacks_run) needs a masked LM (bae, bert-attack: attack.masked_lm)."""
    return any(catalog.recipe(name).masked_lm for name in attacks_run(config))


def attacker_pretrained(config):
    """Whether the workflow pre-trains the attacks' own masked LM (attack.masked_lm: attacker, and one is used)."""
    return masked_lm_used(config) and config["attack"]["masked_lm"] == "attacker"


def attack_sample_size(config, attack):
    """The examples one recipe attacks per model: sample_size for the first of attack.recipes (the robustness
    claims' primary endpoint), secondary_share of it for the others."""
    settings = config["attack"]
    if attack == settings["recipes"][0]:
        return settings["sample_size"]
    return max(1, round(settings["secondary_share"] * settings["sample_size"]))


def attack_recipe_params(config, attack):
    """What the jobs of one attack recipe depend on besides the shared settings: its name, sample size and
    options, the query batch size, the token limit and (bae, bert-attack: the catalog's masked_lm) the masked LM;
    other recipes' options and sample sizes are left out."""
    settings = config["attack"]
    return {
        "name": attack,
        "sample_size": attack_sample_size(config, attack),
        "batch_size": settings["batch_size"],
        "max_length": config["model"]["max_length"],
        "options": settings["options"].get(attack, {}),
    } | ({"masked_lm": settings["masked_lm"]} if catalog.recipe(attack).masked_lm else {})


def attack_params(config, attack):
    """What one attack's jobs depend on: the shared settings, its own options and (bae, bert-attack) its masked LM;
    the keys that choose which attacks run, other attacks' options and sample sizes, and the embedding's build and
    calibration (build_embeddings' params) are left out."""
    shared = stage_params(
        config, "attack", "recipes", "shards", "masked_lm", "options", "secondary_share", "embedding", "calibration"
    )
    return shared | attack_recipe_params(config, attack)


def attack_inputs(config, attack, seed):
    """The resources one attack of a seed's model needs beyond the model, the test split and nltk_data, by input
    name, as the attack catalog says.

    textfooler and a2t swap words with the counter-fitted vectors; those two, bae and bert-attack use the
    MiniLM sentence encoder with the thresholds calibrated beside the vectors (results/resources/counterfitted,
    built by build_embeddings). bae and bert-attack also need their masked LM (the attacker's pre-training, a
    pre-training variant's model of the seed, or a local directory; a Hub name is no file, the attack reads it
    from its params).
    """
    recipe, inputs = catalog.recipe(attack), {}
    if recipe.needs_counterfitted:
        inputs["counterfitted"] = "results/resources/counterfitted"
    if recipe.sentence_encoder:
        inputs["sentence_encoder"] = "results/resources/minilm"
    if recipe.masked_lm:
        source = config["attack"]["masked_lm"]
        if source in MASKED_LM_RUNS:
            inputs["masked_lm"] = f"{pretrain_dir(config, source, seed)}/model"
        elif Path(source).exists():
            inputs["masked_lm"] = source
    return inputs


def attack_shards(config, wildcards):
    """The shard files of one model's attack (gather_attack's inputs)."""
    pattern = f"results/attacks/{MODEL}/{{attack}}/shard{{shard}}.csv"
    return [pattern.format(**dict(wildcards.items()), shard=shard) for shard in range(config["attack"]["shards"])]
