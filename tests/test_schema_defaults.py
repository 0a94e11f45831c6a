"""The schema's defaults are the default experiment: a config with no keys at all, filled in by the schema as
Snakemake fills it, is config.yaml (filled in the same way), so "every key, its default" in the schema is true.

One section differs by design: finetune.method_params. Its schema defaults are each method's own, the references'
values with their sources (the training classes' defaults), and config.yaml writes out every hyperparameter of the
default experiment's methods, its own values among them (a2t's and advaug's shares, cut for the CPU budget);
tests/test_methods.py checks both. The opt-in methods (infobert, ascc, dne) run with the schema's defaults."""

import copy

import yaml
from smk import ROOT
from snakemake.utils import validate

SCHEMA = str(ROOT / "schemas" / "config.schema.yaml")
METHOD_PARAMS = "finetune.method_params"  # the methods' own defaults (above); config.yaml spells them out


def filled(config: dict) -> dict:
    config = copy.deepcopy(config)
    validate(config, SCHEMA)  # sets every missing key to its schema default, as the Snakefile's validate does
    return config


def differences(expected, found, key=""):
    """(key, schema default, config.yaml) for every leaf where the two disagree, finetune.method_params aside."""
    if key == METHOD_PARAMS:
        return
    if isinstance(expected, dict) and isinstance(found, dict):
        for name in sorted({*expected, *found}):
            yield from differences(
                expected.get(name, "<absent>"), found.get(name, "<absent>"), f"{key}.{name}" if key else name
            )
    elif expected != found:
        yield key, expected, found


def test_the_schema_defaults_are_config_yaml():
    default_experiment = filled(yaml.safe_load((ROOT / "config.yaml").read_text()))
    wrong = list(differences(filled({}), default_experiment))
    assert not wrong, "schema default != config.yaml:\n" + "\n".join(f"{k}: {a!r} != {b!r}" for k, a, b in wrong)


def test_the_comparison_sees_a_changed_default():
    """The check above can fail: one value changed in config.yaml is found, with its key."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["finetune"]["seeds"] = [1, 2]
    assert list(differences(filled({}), filled(config))) == [("finetune.seeds", [1, 2, 3], [1, 2])]
