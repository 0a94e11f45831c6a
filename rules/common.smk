# Pure Python helpers shared by the rules: config checks, paths, parameter look-ups and target lists.
# No rules here, so tests can load this file on its own (tests/test_dag.py).
import functools
import itertools
from pathlib import Path

VADER_SETS = ("amazon", "tweets", "nyt", "movies")
RESOURCES = ("minilm", "nltk_data", "glove", "vader")
MODEL = "{dataset}/{pretrain}/{method}/seed{seed}"
ADVAUG_EXAMPLES = "results/advaug/{dataset}/{pretrain}/seed{seed}/adversarial.csv"  # rule attack_train


class ConfigError(ValueError):
    """A config value that the schema cannot catch; the message names the key."""


def check_config(config):
    """Cross-key checks, run before any job: every name must refer to something that exists."""
    sources = config["data"]["sources"]
    for key, names in (("datasets", config["datasets"]), ("pretrain.corpus_datasets", config["pretrain"]["corpus_datasets"])):
        for name in names:
            if name not in sources:
                raise ConfigError(f"{key}: {name!r} is not a key of data.sources ({sorted(sources)})")
    for name, source in sources.items():
        needed = {"movie_reviews": ["name"], "file": ["path"], "hub": ["name"]}[source["kind"]]
        for field in needed:
            if field not in source:
                raise ConfigError(f"data.sources.{name}: kind {source['kind']} needs the key {field!r}")
        if source["kind"] == "movie_reviews" and source["name"] not in ("imdb", "rotten_tomatoes"):
            raise ConfigError(f"data.sources.{name}.name: {source['name']!r} is not imdb or rotten_tomatoes")
        if source["kind"] == "file" and not Path(source["path"]).exists():
            raise ConfigError(f"data.sources.{name}.path: file {source['path']} does not exist")
    for dataset in config["datasets"]:
        for evalset in config["ood"].get(dataset, []):
            if evalset == dataset:
                raise ConfigError(f"ood.{dataset}: a dataset is not out-of-domain for itself")
            if evalset not in sources and evalset not in VADER_SETS:
                raise ConfigError(f"ood.{dataset}: {evalset!r} is neither a data source nor a VADER set {VADER_SETS}")
            if evalset == "movies" and sources[dataset].get("name") == "rotten_tomatoes":
                raise ConfigError(f"ood.{dataset}: VADER's movie snippets come from Rotten Tomatoes' source; not out-of-domain")
    finetune = config["finetune"]
    # method_params may hold parameters of methods not run (config.yaml lists them all)
    known = _schema()["properties"]["finetune"]["properties"]["methods"]["items"]["enum"]
    for method in finetune["method_params"]:
        if method not in known:
            raise ConfigError(f"finetune.method_params.{method}: not a known training method {known}")
    if finetune["grid"] == "base" and set(finetune["methods"]) - {"base"} \
            and finetune["grid_variant"] not in config["pretrain"]["variants"]:
        raise ConfigError(f"finetune.grid_variant: {finetune['grid_variant']!r} is not one of pretrain.variants "
                          f"{config['pretrain']['variants']}")


@functools.cache
def _schema():
    import yaml

    return yaml.safe_load((Path(workflow.basedir) / "schemas" / "config.schema.yaml").read_text())


def method_params(config, method):
    """A method's hyperparameters: the schema's defaults updated with finetune.method_params.<method>."""
    schema = _schema()["properties"]["finetune"]["properties"]["method_params"]["properties"][method]
    defaults = {key: spec["default"] for key, spec in schema.get("properties", {}).items()}
    return defaults | config["finetune"]["method_params"].get(method, {})


def wildcard_patterns(config):
    def choice(names):
        return "|".join(sorted(names, key=len, reverse=True))

    return {
        "dataset": choice(config["data"]["sources"]),
        "pretrain": "none|clean|augmented",
        "method": choice({"base", *config["finetune"]["methods"]}),  # advaug attacks the base model
        "seed": r"\d+",
        "attack": choice(config["attack"]["recipes"]),
        "shard": r"\d+",
        "resource": choice(RESOURCES),
        "vset": choice(VADER_SETS),
        "evalset": choice(["test", *config["data"]["sources"], *VADER_SETS]),
    }


def threads_up_to(n):
    """n threads, but at most half the local cores (at least 1): on a small machine a multi-threaded job then runs
    beside a single-threaded one instead of waiting for every core to be free (two 1-thread jobs also make more
    progress on 2 cores than one 2-thread job). Cluster runs get n: the head, where --cores does not apply, asks
    SLURM for n CPUs, and inside the cluster job (remote mode, where Snakemake reads this file again with the
    node's or the allocation's core count) the job uses the n CPUs it was given."""
    if workflow.remote_exec:
        return n
    try:
        cores = workflow.cores
    except Exception:  # no --cores: a cluster executor gives each job its own cores
        return n
    return max(1, min(n, cores // 2))


def lib_files(*modules):
    """Library modules a rule's script imports: inputs, so that a change to them reruns the rule."""
    return [f"{workflow.basedir}/workflow_scripts/advlm/{name}.py" for name in ("__init__", "runtime", "io", *modules)]


# --- model sources -----------------------------------------------------------------------------------


def base_model(config):
    """The model every variant starts from: the offline MiniLM resource, a local directory or a Hub name."""
    name = config["model"]["name"]
    return "results/resources/minilm" if name == "minilm" else name


def base_model_inputs(config):
    """The base model as a file dependency where it is one (a Hub name is not)."""
    source = base_model(config)
    return [source] if source == "results/resources/minilm" or Path(source).exists() else []


def start_model_inputs(config, pretrain):
    """The model fine-tuning starts from, as a file dependency where it is one (a Hub name is not)."""
    return base_model_inputs(config) if pretrain == "none" else [f"results/pretrain/{pretrain}/model"]


def model_source(config, input):
    """The start model of a job: its model input where it has one, else the configured Hub name."""
    return input.start[0] if input.start else base_model(config)


def method_inputs(config, wildcards):
    """What a method's fine-tuning reads besides the start model and the splits, by input name: a2t attacks
    the model it trains (the A2T attack's resources); advaug reads the attack_train rule's examples."""
    if wildcards.method == "a2t":
        return attack_inputs(config, "a2t") | {"nltk_data": "results/resources/nltk_data"}
    if wildcards.method == "advaug":
        return {"adversarial_examples": advaug_examples_path(wildcards)}
    return {}


def advaug_examples_path(wildcards):
    return ADVAUG_EXAMPLES.format(**dict(wildcards.items()))


def model_dir(wildcards):
    return f"results/models/{MODEL}/model".format(**dict(wildcards.items()))


# --- data --------------------------------------------------------------------------------------------


def split_path(dataset, split):
    return f"results/data/{dataset}/{split}.jsonl"


def evalset_path(config, dataset, evalset):
    """In-domain test split, another source's test split, or a binarised VADER set."""
    if evalset == "test":
        return split_path(dataset, "test")
    if evalset in config["data"]["sources"]:
        return split_path(evalset, "test")
    return f"results/data/vader/{evalset}.jsonl"


def evalsets(config, dataset):
    return ["test", *config["ood"].get(dataset, [])]


def augment_params(config):
    """augment's settings; max_candidates and min_cos_sim only for the embedding augmenter, which alone reads
    them (so that their schema defaults do not rerun the wordnet augmentation)."""
    augment = config["augment"]
    embedding_only = () if augment["augmenter"] == "embedding" else ("max_candidates", "min_cos_sim")
    return {key: value for key, value in augment.items() if key not in embedding_only}


def augmenter_inputs(config):
    """The embedding augmenter swaps with build_embeddings' counter-fitted vectors, loaded by the attack code;
    the wordnet augmenter needs neither."""
    if config["augment"]["augmenter"] != "embedding":
        return {}
    return {"counterfitted": "results/resources/counterfitted",
            "embedding_lib": lib_files("attacks", "embeddings", "models", "resources")}


def corpus_paths(config, pretrain):
    clean = [split_path(name, "train") for name in config["pretrain"]["corpus_datasets"]]
    return clean if pretrain == "clean" else ["results/corpus/augmented.jsonl"]


def stage_params(config, section, *exclude):
    """A stage's config section minus the keys that only choose which jobs exist (their change reruns nothing)."""
    return {key: value for key, value in config[section].items() if key not in exclude}


def data_settings(config):
    data = config["data"]
    return {key: data[key] for key in ("labels", "seed", "split", "max_examples")}


# --- targets -----------------------------------------------------------------------------------------


def models(config):
    """Every (dataset, pretrain, method, seed) combination of the experiment, as wildcard dicts.

    finetune.grid ``every``: each method from each pre-training variant; ``base``: base from each variant, the
    other methods from finetune.grid_variant only.
    """
    finetune = config["finetune"]
    grid = itertools.product(config["datasets"], config["pretrain"]["variants"], finetune["methods"],
                             finetune["seeds"])
    return [dict(dataset=d, pretrain=p, method=m, seed=s) for d, p, m, s in grid
            if finetune["grid"] == "every" or m == "base" or p == finetune["grid_variant"]]


def model_ids(config):
    return [MODEL.format(**model) for model in models(config)]


def eval_targets(config):
    return [f"results/eval/{MODEL}/{evalset}.json".format(**model, evalset=evalset)
            for model in models(config) for evalset in evalsets(config, model["dataset"])]


def attack_targets(config):
    return [f"results/attacks/{MODEL}/{attack}.json".format(**model, attack=attack)
            for model in models(config) for attack in config["attack"]["recipes"]]


def probe_targets(config):
    return [f"results/neurons/{MODEL}/probe.json".format(**model) for model in models(config)]


def attack_shards(config, wildcards):
    pattern = f"results/attacks/{MODEL}/{{attack}}/shard{{shard}}.csv"
    return [pattern.format(**dict(wildcards.items()), shard=shard) for shard in range(config["attack"]["shards"])]


def attack_recipe_params(config, attack):
    """What the jobs of one attack recipe depend on besides the sample: its name and options, the query batch
    size, the token limit and (bae, bert-attack) the masked LM; other recipes' options are left out."""
    settings = config["attack"]
    return ({"name": attack, "batch_size": settings["batch_size"], "max_length": config["model"]["max_length"],
             "options": settings["options"].get(attack, {})}
            | ({"masked_lm": settings["masked_lm"]} if attack in ("bae", "bert-attack") else {}))


def attack_inputs(config, attack):
    """The resources one attack needs beyond the model, the test split and nltk_data, by input name.

    textfooler and a2t swap words with the counter-fitted vectors; those two, bae and bert-attack use the
    MiniLM sentence encoder with the thresholds calibrated beside the vectors (results/resources/counterfitted,
    built by build_embeddings). bae and bert-attack also need their masked LM (a pre-training variant's
    model or a local directory; a Hub name is no file, the attack reads it from its params).
    """
    inputs = {}
    if attack in ("textfooler", "a2t", "bae", "bert-attack"):
        inputs["counterfitted"] = "results/resources/counterfitted"
        inputs["sentence_encoder"] = "results/resources/minilm"
    if attack in ("bae", "bert-attack"):
        source = config["attack"]["masked_lm"]
        if source in ("clean", "augmented"):
            inputs["masked_lm"] = f"results/pretrain/{source}/model"
        elif Path(source).exists():
            inputs["masked_lm"] = source
    return inputs


def final_targets(config):
    resources = [f"results/resources/{name}" for name in ("nltk_data", "glove")]
    return [*resources, "results/report/summary.md"]
