"""The patterns each wildcard may match (the Snakefile's ``wildcard_constraints``), from the config: a path then
matches one rule only, and a typo in a target is an error instead of a job."""

import re

from .identity import VADER_SETS
from .points import advaug_examples, method_points

RESOURCES = ("minilm", "nltk_data", "glove", "vader")  # prepare_resources' outputs


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
