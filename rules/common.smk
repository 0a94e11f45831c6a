# Pure Python helpers shared by the rules: config checks, paths, parameter look-ups and target lists.
# No rules here, so tests can load this file on its own (tests/test_dag.py).
import ast
import functools
import itertools
import os
import re
from pathlib import Path

VADER_SETS = ("amazon", "tweets", "nyt", "movies")
RESOURCES = ("minilm", "nltk_data", "glove", "vader")
MODEL = "{dataset}/{pretrain}/{method}/seed{seed}"
WARM_START = "{dataset}/{pretrain}/seed{seed}"  # the clean epochs a seed's methods share (finetune.warm_start_epochs)
# attack_train's output; {examples} is "adversarial", or e.g. "adversarial-share=0.2" for a swept advaug (advaug_examples)
ADVAUG_EXAMPLES = "results/advaug/{dataset}/{pretrain}/seed{seed}/{examples}.csv"
ADVAUG_EXAMPLE_KEYS = ("attack", "share", "query_budget")  # what attack_train's examples depend on
# the synonym-hull methods (advlm/training/synonym_hull.py): they train on the counter-fitted vectors' synonyms
SYNONYM_HULL_METHODS = ("ascc", "dne")
# attack.masked_lm values that the workflow's own continued pre-training builds (results/pretrain/<name>/<run>/model)
MASKED_LM_RUNS = ("attacker", "clean", "augmented")
# The neuron probes' reference: the start model without fine-tuning (no fine-tuning seed: 0), one per dataset.
REFERENCE = {"pretrain": "none", "method": "pretrained", "seed": 0}


class ConfigError(ValueError):
    """Config values that the schema cannot catch; the message names each key."""


def check_config(config):
    """Checks beyond the schema, run before any job. Every problem is reported at once, each with its key.

    A check is a function of the config that yields (key, problem) pairs; to add one, add it to CONFIG_CHECKS.
    References (a name that must be defined elsewhere in the config) go through ``_undefined``.
    """
    problems = [f"{key}: {problem}" for check in CONFIG_CHECKS for key, problem in check(config)]
    if problems:
        raise ConfigError("invalid config (nothing was run):\n  " + "\n  ".join(problems))


def check_yaml(path):
    """Stop with the file and line where a config file is not valid YAML; Snakemake's own message names neither.
    (Files given with --configfile are read by Snakemake before this file: `snakemake --verbose` names the line.)"""
    import yaml

    if not Path(path).exists():
        return
    try:
        yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(error, 'problem', None) or error}") from None


def _undefined(key, names, defined, what):
    """(key, problem) for each of ``names`` (found at ``key``) that is not among ``defined``; ``what`` says what
    it is instead ("not a key of data.sources")."""
    for name in names:
        if name not in defined:
            yield key, f"{name!r} is {what} ({sorted(defined)})"


def _check_whole_numbers(config):
    """JSON Schema counts 2.0 as an integer, but range(2.0) fails hours later: a count must be written 2."""

    def types(schema):
        alternatives = schema.get("anyOf", []) + schema.get("oneOf", [])
        found = schema.get("type", [])
        return {*([found] if isinstance(found, str) else found), *(t for a in alternatives for t in types(a))}

    def walk(value, schema, key):
        if isinstance(value, float) and "integer" in types(schema) and "number" not in types(schema):
            yield key, f"{value!r} is a float where a whole number is expected; write {value:.0f}"
        elif isinstance(value, dict):
            for name, item in value.items():
                extra = schema.get("additionalProperties")
                sub = schema.get("properties", {}).get(name, extra if isinstance(extra, dict) else {})
                yield from walk(item, sub, f"{key}.{name}" if key else name)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                yield from walk(item, schema["items"], f"{key}[{index}]")

    yield from walk(config, _schema(), "")


def _check_sources(config):
    for name, source in config["data"]["sources"].items():
        key = f"data.sources.{name}"
        needed = {"movie_reviews": ["name"], "file": ["path"], "hub": ["name"]}[source["kind"]]
        for field in needed:
            if field not in source:
                yield key, f"kind {source['kind']} needs the key {field!r}"
        if source["kind"] == "movie_reviews" and source.get("name") not in ("imdb", "rotten_tomatoes", None):
            yield f"{key}.name", f"{source['name']!r} is not imdb or rotten_tomatoes"
        if source["kind"] == "file" and "path" in source:
            path = Path(source["path"])
            if not path.is_file():
                yield f"{key}.path", f"file {path} does not exist"
            elif path.suffix not in (".csv", ".jsonl", ".parquet"):
                yield f"{key}.path", f"{path} is not a .csv, .jsonl or .parquet file"


def _check_references(config):
    sources, finetune = config["data"]["sources"], config["finetune"]
    source_keys = "not a key of data.sources"
    yield from _undefined("datasets", config["datasets"], sources, source_keys)
    yield from _undefined("pretrain.corpus_datasets", config["pretrain"]["corpus_datasets"], sources, source_keys)
    yield from _undefined("ood", config["ood"], sources, source_keys)
    for dataset, evalsets in config["ood"].items():
        key = f"ood.{dataset}"
        yield from _undefined(
            key, evalsets, {*sources, *VADER_SETS} - {dataset}, "neither another data source nor a VADER set"
        )
        for evalset in evalsets:
            if dataset in sources and evalset in {*sources, *VADER_SETS} - {dataset}:
                if _source_identity(config, evalset) == _source_identity(config, dataset):
                    yield key, (
                        f"{evalset!r} is the same data as {dataset!r} ({_describe_source(config, evalset)}): "
                        "not out of domain"
                    )
    calibration = config["attack"]["calibration"].get("dataset")
    yield from _undefined("attack.calibration.dataset", [calibration] if calibration else [], sources, source_keys)
    # method_params may hold parameters of methods not run (config.yaml lists them all)
    known = _method_names()
    for method in finetune["method_params"]:
        yield from _undefined(f"finetune.method_params.{method}", [method], known, "not a known training method")
    if finetune["grid"] == "base" and set(finetune["methods"]) - {"base"}:
        yield from _undefined(
            "finetune.grid_variant",
            [finetune["grid_variant"]],
            config["pretrain"]["variants"],
            "not one of pretrain.variants",
        )
    yield from _check_model_path("model.name", config["model"]["name"], ("minilm",))
    if any(_attack_catalog().recipe(name).masked_lm for name in attacks_run(config)):
        yield from _check_model_path("attack.masked_lm", config["attack"]["masked_lm"], MASKED_LM_RUNS)
        if config["attack"]["masked_lm"] == "attacker":
            yield from _check_attacker_seed(config)
            yield from _check_attacker_corpus(config)


def _check_attacker_corpus(config):
    """The attacker's corpus is data, none of it a victim's training text (by identity, whatever the key)."""
    sources, key = config["data"]["sources"], "attack.masked_lm_corpus"
    yield from _undefined(key, config["attack"]["masked_lm_corpus"], sources, "not a key of data.sources")
    victims = {
        _source_identity(config, name): name
        for name in {*config["datasets"], *config["pretrain"]["corpus_datasets"]}
        if name in sources
    }
    for name in config["attack"]["masked_lm_corpus"]:
        victim = victims.get(_source_identity(config, name)) if name in sources else None
        if victim:
            yield key, (
                f"{name!r} ({_describe_source(config, name)}) is the training text of {victim!r}, which victims "
                "are trained on: the attacker's masked LM would share their corpus"
            )


def _check_attacker_seed(config):
    """The attacker reads the clean corpus with the pretrain settings: with a clean run's seed it would be that
    run's model, which the clean variant's victims are fine-tuned from."""
    seed = config["attack"]["masked_lm_seed"]
    for run in sorted({pretrain_run(config, "clean", s) for s in config["finetune"]["seeds"]}):
        if pretrain_seed(config, "clean", run) == seed:
            yield "attack.masked_lm_seed", (
                f"{seed} is the seed of the clean pre-training run {run!r} (pretrain.seed {config['pretrain']['seed']}, "
                f"pretrain.replicate {config['pretrain']['replicate']}): the attacker's masked LM would be the clean "
                "variant's model, which its victims are fine-tuned from"
            )


def _check_model_path(key, name, names=()):
    """A model name is a directory where one exists (relative to the working directory), else a Hub id; offline
    (HF_HUB_OFFLINE, which `make` sets) a Hub id must be in the local Hub cache. Anything else is rejected here,
    before any job, with both readings: a missing relative path such as models/my-bert looks like a Hub id."""
    if name in names or Path(name).expanduser().is_dir():
        return
    where = f"there is no directory {Path(name).expanduser().resolve()}"
    if _looks_local(name):
        yield key, f"{name!r}: {where} (a Hub id is org/name: one slash, no leading dot or slash)"
    elif _offline() and not _in_hub_cache(name):
        yield key, (
            f"{name!r}: {where}, and read as a Hub id it is not in the local Hub cache "
            "(offline: HF_HUB_OFFLINE is set). Give a directory that exists, or fill the cache with network access"
        )


def _offline():
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def _in_hub_cache(name):
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def _looks_local(name):
    """A path rather than a Hub name (``org/name``), as advlm.models reads it."""
    return Path(name).expanduser().is_absolute() or name.startswith(".") or name.count("/") > 1


def _check_counts(config):
    """Numbers that must agree with each other."""
    labels, attack, data = config["data"]["labels"], config["attack"], config["data"]
    if sorted(labels) != list(range(len(labels))):
        yield "data.labels", f"{labels} must be 0..{len(labels) - 1}: a model with {len(labels)} outputs predicts those"
    for dataset in sorted({*config["datasets"], *config["pretrain"]["corpus_datasets"]} & set(data["sources"])):
        for split in data["max_examples"]:
            cap = split_cap(config, dataset, split)
            if cap < len(labels):
                yield f"data.max_examples.{split}", f"{cap} {dataset} examples cannot hold all {len(labels)} labels"
    tests = [split_cap(config, dataset, "test") for dataset in config["datasets"] if dataset in data["sources"]]
    sizes = [attack_sample_size(config, recipe) for recipe in attack["recipes"]]
    sample = min([*sizes, *tests], default=0)  # the smallest attacked sample, of the smallest test split
    if attack["recipes"] and attack["shards"] > sample:
        yield "attack.shards", f"{attack['shards']} shards for a sample of at most {sample} test examples"
    neighbours = attack["embedding"]["neighbours"]
    candidates = {
        f"attack.options.{recipe.name}.max_candidates": attack["options"][recipe.name]["max_candidates"]
        for recipe in _attack_catalog().RECIPES
        if recipe.embedding and recipe.name in attacks_run(config)
    }
    if config["augment"]["augmenter"] == "embedding":
        candidates["augment.max_candidates"] = config["augment"]["max_candidates"]
    for key, value in candidates.items():
        if value > neighbours:
            yield key, f"{value} is more than the {neighbours} neighbours precomputed (attack.embedding.neighbours)"


def split_cap(config, dataset, split):
    """The cap on one split of one dataset (data.max_examples, overridden per source); inf for none."""
    cap = (config["data"]["max_examples"] | config["data"]["sources"][dataset].get("max_examples", {})).get(split)
    return float("inf") if cap is None else cap


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


def check_device(config):
    """device: cuda needs a GPU where the jobs run. Checked when a run starts (onstart), before its first job, once
    the executor is known: a cluster's login node sees no GPU where its GPU nodes do."""
    if config["device"] == "cuda" and workflow.local_exec:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device: is cuda but no GPU is visible here; set device: auto (or cpu)")


# Each claims family's metrics, in advlm.claims.FAMILIES order (tests/test_claims.py checks that they agree): the
# primary endpoints are checked here, before any job runs, where the advlm package is not imported.
CLAIM_METRICS = {
    "robustness": ["accuracy_under_attack", "attack_success_rate", "capped_accuracy_under_attack", "words_to_flip"],
    "generalization": ["accuracy", "ece"],
    "neurons": ["minimal_share", "selectivity", "mean_jaccard", "probeless_share"],
}


def _check_claims(config):
    """Every cell of a claim is 'pretrain/method' with a known variant and a known method or sweep point (untrained
    ones are 'not run'); a primary endpoint names a contrast, a metric of the claim's family and a key it has."""
    variants = _schema()["properties"]["pretrain"]["properties"]["variants"]["items"]["enum"]
    methods = [*_method_names(), *(point for point in method_points(config) if point not in _method_names())]
    for name, statement in config.get("claims", {}).get("statements", {}).items():  # filled by the schema
        for index, contrast in enumerate(statement["contrasts"]):
            for side in ("treatment", "control"):
                for cell in contrast[side]:
                    pretrain, _, method = cell.partition("/")
                    if pretrain not in variants or method not in methods:
                        yield (
                            f"claims.statements.{name}.contrasts[{index}].{side}",
                            f"{cell!r} is not 'pretrain/method' with pretrain in {variants} and method in {methods}",
                        )
        yield from _check_primary(config, name, statement)


def _check_primary(config, name, statement):
    primary, where = statement.get("primary", {}), f"claims.statements.{name}.primary"
    if statement.get("family") not in CLAIM_METRICS:  # the schema requires it and names the key
        return
    if primary.get("contrast", 0) >= len(statement["contrasts"]):
        yield f"{where}.contrast", f"is {primary['contrast']}; the claim has {len(statement['contrasts'])} contrasts"
    metrics = CLAIM_METRICS[statement["family"]]
    metric = primary.get("metric", metrics[0])
    if metric not in metrics:
        yield f"{where}.metric", f"{metric!r} is not a metric of family {statement['family']}: {metrics}"
    keys = {
        "robustness": config["attack"]["recipes"],
        "generalization": (
            ["test"]
            if metric == "ece"
            else ["test", *{e for evalsets in config["ood"].values() for e in evalsets}, "ood_mean"]
        ),
        "neurons": ["all"],
    }[statement["family"]]
    if "key" in primary and primary["key"] not in keys:
        yield f"{where}.key", f"{primary['key']!r} is not one of {sorted(keys)} (attack.recipes, ood, for {metric})"


def _check_ood_leakage(config):
    """A source whose text the pre-training corpus holds, under any key, is not out of domain for models
    continued-pre-trained on it: sources compare by identity (_source_identity), not by key."""
    if not {"clean", "augmented"} & set(config["pretrain"]["variants"]):
        return
    sources = config["data"]["sources"]
    corpus = {_source_identity(config, key): key for key in config["pretrain"]["corpus_datasets"] if key in sources}
    for dataset, evalsets in config["ood"].items():
        for evalset in evalsets:
            if evalset not in {*sources, *VADER_SETS}:
                continue  # _check_references names it
            seen = corpus.get(_source_identity(config, evalset))
            if seen is not None:
                yield (
                    f"ood.{dataset}",
                    f"{evalset!r} ({_describe_source(config, evalset)}) is the data of pretrain.corpus_datasets "
                    f"{seen!r}: its text was seen in continued pre-training, so it is not out of domain for the clean "
                    "and augmented variants",
                )


def _source_identity(config, key):
    """What a data source's text is, whatever its key: the movie_reviews subset, the Hub dataset and configuration,
    a local file's content (sha256), or a VADER set; VADER's movie snippets are Rotten Tomatoes' (Pang & Lee)."""
    if key in VADER_SETS and key not in config["data"]["sources"]:
        return ("movie_reviews", "rotten_tomatoes") if key == "movies" else ("vader", key)
    source = config["data"]["sources"][key]
    if source["kind"] == "movie_reviews":
        return ("movie_reviews", source.get("name"))
    if source["kind"] == "hub":
        return ("hub", source.get("name"), source.get("config"))
    path = Path(source.get("path", "")).expanduser()
    return ("file", _sha256(path) if path.is_file() else str(path.resolve()))


@functools.cache
def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe_source(config, key):
    kind, *rest = _source_identity(config, key)
    if kind == "vader" or (key == "movies" and key not in config["data"]["sources"]):
        return "VADER's movie snippets, from Rotten Tomatoes' source" if key == "movies" else f"VADER {key}"
    if kind == "file":
        return f"file with sha256 {rest[0][:12]}…" if len(rest[0]) == 64 else f"file {rest[0]}"
    return " ".join([kind, *(str(part) for part in rest if part is not None)])


def _check_sweep(config):
    """A swept method is trained, and each swept value is one its parameter's schema accepts."""
    import jsonschema

    finetune = config["finetune"]
    for method, sweep in finetune["sweep"].items():
        if method not in finetune["methods"]:
            yield f"finetune.sweep.{method}", f"{method!r} is not in finetune.methods: a sweep varies a method trained"
        known = _method_schema(method).get("properties", {})
        for key, name, value in _swept(method, sweep):
            if name not in known:
                yield key, f"{name!r} is not a parameter of {method} ({sorted(known)})"
                continue
            try:
                jsonschema.validate(value, known[name])
            except jsonschema.ValidationError as error:
                yield key, error.message
            if isinstance(value, float) and known[name].get("type") == "integer":
                yield key, f"{value!r} is a float where a whole number is expected"


def _swept(method, sweep):
    """(key, parameter, value) for each value of a method's sweep, a grid or a list of points."""
    if isinstance(sweep, dict):
        for name, values in sweep.items():
            for index, value in enumerate(values):
                yield f"finetune.sweep.{method}.{name}[{index}]", name, value
    else:
        for index, point in enumerate(sweep):
            for name, value in point.items():
                yield f"finetune.sweep.{method}[{index}].{name}", name, value


def _check_sweep_ids(config):
    """Two different sweep points of one id (values that print alike, as 0.1 and 0.10000001) would share a model."""
    for method in config["finetune"]["methods"]:
        seen = {}
        for changed in _changed_points(config, method):
            other = seen.setdefault(point_id(method, changed), changed)
            if other != changed:
                yield f"finetune.sweep.{method}", (
                    f"the points {other} and {changed} both get the id {point_id(method, changed)!r}: "
                    "write values that differ in their first 6 significant digits"
                )


CONFIG_CHECKS = [
    _check_whole_numbers,
    _check_sources,
    _check_references,
    _check_counts,
    _check_claims,
    _check_ood_leakage,
    _check_sweep,
    _check_sweep_ids,
]


@functools.cache
def _attack_catalog():
    """The attack recipes as data (workflow_scripts/advlm/attacks/catalog.py: which attacks need the embedding, the
    sentence encoder, the masked LM), loaded from its file on its own: it imports nothing, whereas importing it as
    advlm.attacks.catalog would need workflow_scripts on sys.path and run the advlm package's set-up here."""
    import importlib.util
    import sys

    path = Path(workflow.basedir) / "workflow_scripts" / "advlm" / "attacks" / "catalog.py"
    spec = importlib.util.spec_from_file_location("advlm_attack_catalog", path)
    catalog = importlib.util.module_from_spec(spec)  # (not named module: a Snakemake keyword)
    sys.modules[spec.name] = catalog  # dataclasses look up the module of the class they make
    spec.loader.exec_module(catalog)
    return catalog


@functools.cache
def _schema():
    import yaml

    return yaml.safe_load((Path(workflow.basedir) / "schemas" / "config.schema.yaml").read_text())


def _method_names():
    return _schema()["properties"]["finetune"]["properties"]["methods"]["items"]["enum"]


def _method_schema(method):
    return _schema()["properties"]["finetune"]["properties"]["method_params"]["properties"][method]


def method_params(config, method):
    """A method's hyperparameters: the schema's defaults updated with finetune.method_params.<method>."""
    defaults = {key: spec["default"] for key, spec in _method_schema(method).get("properties", {}).items()}
    return defaults | config["finetune"]["method_params"].get(method, {})


# --- method points: the methods as configured and their finetune.sweep points ------------------------


def point_id(method, values):
    """A point's readable id: the method, then each swept parameter's value (pgd-epsilon=1-steps=5). Method names
    hold no '-', so the method is the id's first part (workflow_scripts/finetune.py reads it so)."""
    return "-".join([method, *(f"{name}={_id_value(value)}" for name, value in values.items())])


def _id_value(value):
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def method_points(config):
    """Every trained configuration, by id: each of finetune.methods as configured (the id is its name), then each
    point of its finetune.sweep, named by the parameters it changes from the configured ones only, so that sweeping
    one more parameter renames no existing point (a point equal to the configured parameters is the method's own
    model, not a second one). Each maps to {"method", "overrides": the values it changes}."""
    points = {}
    for method in config["finetune"]["methods"]:
        points[method] = {"method": method, "overrides": {}}
        for overrides in _changed_points(config, method):
            points.setdefault(point_id(method, overrides), {"method": method, "overrides": overrides})
    return points


def _changed_points(config, method):
    """Each sweep point of ``method`` as the values it changes from method_params (1 and 1.0 equal), none empty."""
    configured = method_params(config, method)
    points = []
    for point in _sweep_points(config["finetune"]["sweep"].get(method, {})):
        changed = {name: value for name, value in point.items() if configured.get(name) != value}
        if changed:
            points.append(changed)
    return points


def _sweep_points(sweep):
    """A method's sweep as the parameter values of each point: a list of points as it is, a grid expanded."""
    if isinstance(sweep, list):
        return sweep
    return [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())]


def point_method(config, point):
    """The training method of a point id (``pretrained``, the neuron probes' reference, is its own)."""
    return method_points(config).get(point, {"method": point})["method"]


def point_params(config, point):
    """A point's hyperparameters: its method's (method_params) with the swept values set."""
    found = method_points(config)[point]
    return method_params(config, found["method"]) | found["overrides"]


def finetune_method_params(config, point):
    """The finetune rule's method parameters: finetune.method_params.<method> as written, with a point's swept
    values set (the training code fills the defaults; an unswept model's parameters are unchanged by sweeps)."""
    found = method_points(config)[point]
    return config["finetune"]["method_params"].get(found["method"], {}) | found["overrides"]


def swept_values(config, point):
    """The values of the parameters its method's sweep varies, for a point ({} for an unswept method)."""
    sweep = config["finetune"]["sweep"].get(method_points(config)[point]["method"], {})
    names = dict.fromkeys(name for values in _sweep_points(sweep) for name in values)  # in the order written
    params = point_params(config, point)
    return {name: params[name] for name in names}


def advaug_examples(config):
    """attack_train's example sets by name, each with its advaug parameters: "adversarial" for advaug as configured,
    and one more per sweep point that changes the attack, share or query budget (not for weight alone)."""
    return {
        advaug_examples_name(config, point): method_params(config, "advaug") | _examples_overrides(config, point)
        for point in _points_of(config, "advaug")
    }


def advaug_examples_name(config, point):
    """The example set an advaug point trains on (advaug_examples)."""
    return point_id("adversarial", _examples_overrides(config, point))


def _examples_overrides(config, point):
    """The swept values of an advaug point that change its examples (ADVAUG_EXAMPLE_KEYS) from the configured ones."""
    configured = method_params(config, "advaug")
    overrides = method_points(config)[point]["overrides"]
    return {key: value for key, value in overrides.items() if key in ADVAUG_EXAMPLE_KEYS and value != configured[key]}


def wildcard_patterns(config):
    def choice(names):
        return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))

    return {
        "dataset": choice(config["data"]["sources"]),
        "pretrain": "none|clean|augmented",
        # advaug attacks the base model; pretrained: the neuron probes' reference (REFERENCE)
        "method": choice({"base", "pretrained", *method_points(config)}),
        "examples": choice(advaug_examples(config) or ["adversarial"]),
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


LIBRARY = "advlm"  # the package under workflow_scripts/ that the rules' scripts share


def script_libs(script):
    """The library files a rule's script imports, directly or through other modules (imports inside functions
    included; a package's ``__init__`` with each of its modules): inputs, so that a change to any of them reruns
    the rule. Snakemake itself tracks only the script file; the list is read from the code, so it cannot fall
    behind it."""
    root = Path(workflow.basedir) / "workflow_scripts"
    seen, todo = set(), [root / f"{script}.py"]
    while todo:
        for path in _library_imports(todo.pop(), root) - seen:
            seen.add(path)
            todo.append(path)
    return sorted(str(path) for path in seen)


def _module_file(root, dotted):
    """The file of module ``dotted`` (``advlm.attacks.catalog``) under ``root``, or None if there is none."""
    base = root.joinpath(*dotted.split("."))
    return next((path for path in (base.with_suffix(".py"), base / "__init__.py") if path.exists()), None)


@functools.cache
def _library_imports(path, root):
    """The library files one Python file imports: each imported module's file and its packages' ``__init__``."""
    path = Path(path)
    own_package = ".".join(path.relative_to(root).parent.parts)  # "" for a rule's script
    if path.name == "__init__.py":
        own_package = ".".join(path.relative_to(root).parts[:-1])
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = own_package.split(".")[: len(own_package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            modules.add(base)
            # `from advlm import x` imports module x where x is one, else a name of the package
            modules.update(f"{base}.{alias.name}" for alias in node.names)
    files = set()
    for module in modules:
        parts = module.split(".")
        if parts[0] != LIBRARY:
            continue
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            found = _module_file(root, ".".join(parts[:depth]))
            if found:
                files.add(found)
    return frozenset(files)


# --- model sources -----------------------------------------------------------------------------------


def base_model(config):
    """The model every variant starts from: the offline MiniLM resource, a local directory or a Hub name."""
    name = config["model"]["name"]
    return "results/resources/minilm" if name == "minilm" else name


def base_model_inputs(config):
    """The base model as a file dependency where it is one (a Hub name is not)."""
    source = base_model(config)
    return [source] if source == "results/resources/minilm" or Path(source).exists() else []


def start_model_inputs(config, pretrain, seed):
    """The model a fine-tuning seed starts from, as a file dependency where it is one (a Hub name is not)."""
    return base_model_inputs(config) if pretrain == "none" else [f"{pretrain_dir(config, pretrain, seed)}/model"]


def pretrain_dir(config, pretrain, seed=None):
    """The directory of the continued pre-training a fine-tuning seed's models start from."""
    return f"results/pretrain/{pretrain}/{pretrain_run(config, pretrain, seed)}"


def pretrain_run(config, pretrain, seed=None):
    """The continued pre-training run a fine-tuning seed's models start from: the seed's own, ``seed<s>``
    (pretrain.replicate per_seed), or ``shared``, the run every seed shares (once; the attacks' masked LM,
    attacker, always)."""
    shared = pretrain == "attacker" or config["pretrain"]["replicate"] == "once"
    return "shared" if shared else f"seed{seed}"


def finetune_start_inputs(config, wildcards):
    """The model a method's fine-tuning starts from: the seed's shared warm start, or without one
    (finetune.warm_start_epochs 0) the pre-training variant's start model."""
    if config["finetune"]["warm_start_epochs"] > 0:
        return [f"results/warm_start/{WARM_START}/model".format(**dict(wildcards.items()))]
    return start_model_inputs(config, wildcards.pretrain, wildcards.seed)


# finetune keys that choose which models exist: a change to them retrains no other model
MODEL_CHOICE_KEYS = ("methods", "seeds", "method_params", "grid", "grid_variant", "sweep")
# finetune keys that only the methods' own epochs read: a change to them trains no warm start again
METHOD_PHASE_KEYS = ("epochs", "patience", "budget_ramp_epochs")


def warm_start_params(config):
    """The warm start's training parameters: the finetune section without the keys that choose which models exist
    or that only the methods' own epochs read, its epochs the warm-start epochs."""
    params = stage_params(config, "finetune", *MODEL_CHOICE_KEYS, *METHOD_PHASE_KEYS)
    return params | {"epochs": config["finetune"]["warm_start_epochs"], "max_length": config["model"]["max_length"]}


def model_source(config, input):
    """The start model of a job: its model input where it has one, else the configured Hub name."""
    return input.start[0] if input.start else base_model(config)


def method_inputs(config, wildcards):
    """What a method's fine-tuning reads besides the start model and the splits, by input name: a2t attacks
    the model it trains (the A2T attack's resources); advaug reads the attack_train rule's examples; the
    synonym-hull methods ascc and dne read their synonyms from the counter-fitted vectors (build_embeddings)."""
    method = point_method(config, wildcards.method)
    if method == "a2t":
        return attack_inputs(config, "a2t", wildcards.seed) | {"nltk_data": "results/resources/nltk_data"}
    if method == "advaug":
        return {"adversarial_examples": advaug_examples_path(config, wildcards)}
    if method in SYNONYM_HULL_METHODS:
        return {"counterfitted": "results/resources/counterfitted"}
    return {}


def advaug_examples_path(config, wildcards):
    wildcards = dict(wildcards.items())
    return ADVAUG_EXAMPLES.format(**wildcards, examples=advaug_examples_name(config, wildcards["method"]))


def model_dir(wildcards):
    return f"results/models/{MODEL}/model".format(**dict(wildcards.items()))


def is_reference(wildcards):
    return wildcards.method == REFERENCE["method"]


def neuron_model_inputs(config, wildcards):
    """The model whose activations are extracted: the fine-tuned model, or for the reference the start model
    without fine-tuning (as a file dependency where it is one; a Hub name is not)."""
    return base_model_inputs(config) if is_reference(wildcards) else [model_dir(wildcards)]


def neuron_model_source(config, input):
    """The model an extract_activations job loads: its model input where it has one, else the Hub name."""
    return str(input.model[0]) if input.model else base_model(config)


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


def evalset_inputs(config, dataset):
    """evaluate's inputs: each evaluation set of ``dataset`` under its name."""
    return {evalset: evalset_path(config, dataset, evalset) for evalset in evalsets(config, dataset)}


def augment_params(config):
    """augment's settings; max_candidates and min_cos_sim only for the embedding augmenter, which alone reads
    them (so that their schema defaults do not rerun the wordnet augmentation)."""
    augment = config["augment"]
    embedding_only = () if augment["augmenter"] == "embedding" else ("max_candidates", "min_cos_sim")
    return {key: value for key, value in augment.items() if key not in embedding_only}


def augmenter_inputs(config):
    """The embedding augmenter swaps with build_embeddings' counter-fitted vectors; the wordnet augmenter does not
    (the attack code that loads them is an input either way: script_libs follows augment's imports)."""
    if config["augment"]["augmenter"] != "embedding":
        return {}
    return {"counterfitted": "results/resources/counterfitted"}


def corpus_paths(config, pretrain):
    """The corpus of a continued pre-training: the augmented one, the clean one (the variant clean), or the
    attacks' own masked LM's (attacker: attack.masked_lm_corpus, no victim's text)."""
    if pretrain == "augmented":
        return ["results/corpus/augmented.jsonl"]
    sources = config["attack"]["masked_lm_corpus"] if pretrain == "attacker" else config["pretrain"]["corpus_datasets"]
    return [split_path(name, "train") for name in sources]


def pretrain_params(config, pretrain, run="shared"):
    """A continued pre-training's settings, its seed that of its run (pretrain_seed); the attackers' masked LM
    (attacker) differs from the variant clean only in its seed, so that it is a training run of its own."""
    params = stage_params(config, "pretrain", "variants", "corpus_datasets", "replicate")  # the corpus is an input
    return params | {"seed": pretrain_seed(config, pretrain, run)}


def pretrain_seed(config, pretrain, run):
    """The seed of a continued pre-training run: attack.masked_lm_seed for the attacker, pretrain.seed for a
    shared run, and for fine-tuning seed s's own run (``seed<s>``) one drawn from (pretrain.seed, s) by numpy's
    SeedSequence, independent of every other run's and of the fine-tuning seeds."""
    import numpy as np

    if pretrain == "attacker":
        return config["attack"]["masked_lm_seed"]
    if run == "shared":
        return config["pretrain"]["seed"]
    replicate = int(run.removeprefix("seed"))
    return int(np.random.SeedSequence([config["pretrain"]["seed"], replicate]).generate_state(1)[0])


def stage_params(config, section, *exclude):
    """A stage's config section minus the keys that only choose which jobs exist (their change reruns nothing)."""
    return {key: value for key, value in config[section].items() if key not in exclude}


def source_inputs(config, dataset):
    """The file a data source reads, where it is one (a package or Hub dataset is software, not a file input)."""
    source = config["data"]["sources"][dataset]
    return [source["path"]] if source["kind"] == "file" else []


def resource_inputs(config, resource):
    """What prepare_resources reads besides packages, by input name: the pinned source archive (its folder is
    the downloads directory), the pin list and, for nltk_data, the stopword list shipped in resources/."""
    import csv

    repo = Path(workflow.basedir) / "resources"
    pins = {"nltk_data": "wn", "vader": "vaderSentiment"}
    if resource not in pins:
        return {}
    with open(repo / "downloads.tsv", newline="") as handle:
        files = {row["name"]: row["file"] for row in csv.DictReader(handle, delimiter="\t")}
    inputs = {"archive": f"{config['downloads_dir']}/{files[pins[resource]]}", "pins": str(repo / "downloads.tsv")}
    return inputs | ({"stopwords": str(repo / "nltk_stopwords" / "english")} if resource == "nltk_data" else {})


def data_settings(config):
    data = config["data"]
    return {key: data[key] for key in ("labels", "seed", "split", "max_examples")}


# --- targets -----------------------------------------------------------------------------------------


def models(config):
    """Every (dataset, pretrain, method, seed) combination of the experiment, as wildcard dicts; ``method`` is a
    method point's id (method_points: each method, then its sweep points).

    finetune.grid ``every``: each method from each pre-training variant; ``base``: base from each variant, the
    other methods from finetune.grid_variant only.
    """
    finetune, points = config["finetune"], method_points(config)
    grid = itertools.product(config["datasets"], config["pretrain"]["variants"], points, finetune["seeds"])
    return [
        dict(dataset=d, pretrain=p, method=m, seed=s)
        for d, p, m, s in grid
        if finetune["grid"] == "every" or points[m]["method"] == "base" or p == finetune["grid_variant"]
    ]


def warm_starts(config):
    """Every (dataset, pretrain, seed) whose methods share a warm start (none where finetune.warm_start_epochs is 0)."""
    if config["finetune"]["warm_start_epochs"] == 0:
        return []
    keys = {(m["dataset"], m["pretrain"], m["seed"]) for m in models(config)}
    return [dict(dataset=d, pretrain=p, seed=s) for d, p, s in sorted(keys)]


def warm_start_logs(config):
    return [f"results/warm_start/{WARM_START}/train_log.json".format(**keys) for keys in warm_starts(config)]


def model_ids(config):
    return [MODEL.format(**model) for model in models(config)]


def eval_targets(config):
    """Every model's evaluate directory (<evalset>.json and <evalset>.predictions.csv per evaluation set)."""
    return [f"results/eval/{MODEL}".format(**model) for model in models(config)]


def attack_targets(config):
    return [
        f"results/attacks/{MODEL}/{attack}.json".format(**model, attack=attack)
        for model in models(config)
        for attack in config["attack"]["recipes"]
    ]


def reference_models(config):
    """Per dataset, the start model without fine-tuning, probed as the reference row of the neuron table."""
    return [dict(dataset=dataset, **REFERENCE) for dataset in config["datasets"]]


def probe_path(model):
    return f"results/neurons/{MODEL}/probe.json".format(**model)


def probe_targets(config):
    """Every model's probe, the datasets' reference probes first."""
    return [probe_path(model) for model in [*reference_models(config), *models(config)]]


def reference_probe_inputs(config, wildcards):
    """The reference probe.json whose (C, l1_ratio) a non-reference probe reuses (neurons.regularization:
    reference); nothing for the reference itself, which chooses it, or for a regularization fixed in the config."""
    if config["neurons"]["regularization"] != "reference" or is_reference(wildcards):
        return {}
    return {"reference": probe_path(dict(dataset=wildcards.dataset, **REFERENCE))}


def attack_shards(config, wildcards):
    pattern = f"results/attacks/{MODEL}/{{attack}}/shard{{shard}}.csv"
    return [pattern.format(**dict(wildcards.items()), shard=shard) for shard in range(config["attack"]["shards"])]


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
    } | ({"masked_lm": settings["masked_lm"]} if _attack_catalog().recipe(attack).masked_lm else {})


def attack_inputs(config, attack, seed):
    """The resources one attack of a seed's model needs beyond the model, the test split and nltk_data, by input
    name, as the attack catalog says (advlm/attacks/catalog.py).

    textfooler and a2t swap words with the counter-fitted vectors; those two, bae and bert-attack use the
    MiniLM sentence encoder with the thresholds calibrated beside the vectors (results/resources/counterfitted,
    built by build_embeddings). bae and bert-attack also need their masked LM (the attacker's pre-training, a
    pre-training variant's model of the seed, or a local directory; a Hub name is no file, the attack reads it
    from its params).
    """
    recipe, inputs = _attack_catalog().recipe(attack), {}
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


def _points_of(config, *methods):
    return [point for point, found in method_points(config).items() if found["method"] in methods]


def claims_experiment(config):
    """What the claims stage needs to know of the experiment: the trained models, the datasets, evaluation sets
    and attacks, the augmenter, the attack each input-space method trains on and the methods (and their sweep
    points) that train on counter-fitted synonyms."""
    return {
        "datasets": config["datasets"],
        "ood": {d: config["ood"].get(d, []) for d in config["datasets"]},
        "attacks": config["attack"]["recipes"],
        "augmenter": config["augment"]["augmenter"],
        "method_attacks": {"a2t": "a2t", "advaug": method_params(config, "advaug")["attack"]}
        | {point: "a2t" for point in _points_of(config, "a2t")}
        | {point: point_params(config, point)["attack"] for point in _points_of(config, "advaug")},
        "synonym_hull_methods": _points_of(config, *SYNONYM_HULL_METHODS),
        "models": [{key: model[key] for key in ("dataset", "pretrain", "method")} for model in models(config)],
        # each point's method and swept values: the report draws a method's points as one trade-off curve
        "points": {
            point: {"method": found["method"], "values": swept_values(config, point)}
            for point, found in method_points(config).items()
        },
    }


def final_targets(config):
    resources = [f"results/resources/{name}" for name in ("nltk_data", "glove")]
    return [*resources, "results/report/summary.md"]
