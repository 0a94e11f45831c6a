"""The experiment's jobs as target lists: every model (each (dataset, pretrain, method point, seed) the grid
plans), its evaluations, attacks and probes, the warm starts, and what the claims stage is told of them."""

import itertools

from .paths import MODEL, REFERENCE, WARM_START, probe_path
from .points import SYNONYM_HULL_METHODS, method_params, method_points, point_params, points_of, swept_values


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


def model_ids(config):
    return [MODEL.format(**model) for model in models(config)]


def warm_starts(config):
    """Every (dataset, pretrain, seed) whose methods share a warm start (none where finetune.warm_start_epochs is 0)."""
    if config["finetune"]["warm_start_epochs"] == 0:
        return []
    keys = {(m["dataset"], m["pretrain"], m["seed"]) for m in models(config)}
    return [dict(dataset=d, pretrain=p, seed=s) for d, p, s in sorted(keys)]


def warm_start_logs(config):
    return [f"results/warm_start/{WARM_START}/train_log.json".format(**keys) for keys in warm_starts(config)]


def train_logs(config):
    return [f"results/models/{model}/train_log.json" for model in model_ids(config)]


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


def probe_targets(config):
    """Every model's probe, the datasets' reference probes first."""
    return [probe_path(model) for model in [*reference_models(config), *models(config)]]


def final_targets(config):
    """What `snakemake` builds: the report (and so everything it reads) and the resources the docs point to."""
    resources = [f"results/resources/{name}" for name in ("nltk_data", "glove")]
    return [*resources, "results/report/summary.md"]


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
        | {point: "a2t" for point in points_of(config, "a2t")}
        | {point: point_params(config, point)["attack"] for point in points_of(config, "advaug")},
        "synonym_hull_methods": points_of(config, *SYNONYM_HULL_METHODS),
        "models": [{key: model[key] for key in ("dataset", "pretrain", "method")} for model in models(config)],
        # each point's method and swept values: the report draws a method's points as one trade-off curve
        "points": {
            point: {"method": found["method"], "values": swept_values(config, point)}
            for point, found in method_points(config).items()
        },
    }
