"""The config schema (schemas/config.schema.yaml) as data: the known methods and pre-training variants, and each
method's parameters with their defaults."""

import functools

from .repo import ROOT


@functools.cache
def schema():
    import yaml

    return yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())


def method_names():
    """Every training method the code knows (finetune.methods' enum)."""
    return schema()["properties"]["finetune"]["properties"]["methods"]["items"]["enum"]


def method_schema(method):
    """The schema of finetune.method_params.<method>: its parameters, their ranges and defaults."""
    return schema()["properties"]["finetune"]["properties"]["method_params"]["properties"][method]


def variant_names():
    """Every pre-training variant (pretrain.variants' enum)."""
    return schema()["properties"]["pretrain"]["properties"]["variants"]["items"]["enum"]
