"""The model each job starts from or loads: the configured base model (the offline MiniLM resource, a local
directory or a Hub name), a pre-training variant's run, a seed's warm start or a fine-tuned model. A file or
directory is a job input; a Hub name is not, the job reads it from its params."""

from pathlib import Path

from .paths import REFERENCE, WARM_START, model_dir, pretrain_dir


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


def finetune_start_inputs(config, wildcards):
    """The model a method's fine-tuning starts from: the seed's shared warm start, or without one
    (finetune.warm_start_epochs 0) the pre-training variant's start model."""
    if config["finetune"]["warm_start_epochs"] > 0:
        return [f"results/warm_start/{WARM_START}/model".format(**dict(wildcards.items()))]
    return start_model_inputs(config, wildcards.pretrain, wildcards.seed)


def model_source(config, input):
    """The start model of a job: its model input where it has one, else the configured Hub name."""
    return input.start[0] if input.start else base_model(config)


def is_reference(wildcards):
    """Whether a job's model is the neuron probes' reference (the start model without fine-tuning)."""
    return wildcards.method == REFERENCE["method"]


def neuron_model_inputs(config, wildcards):
    """The model whose activations are extracted: the fine-tuned model, or for the reference the start model
    without fine-tuning (as a file dependency where it is one; a Hub name is not)."""
    return base_model_inputs(config) if is_reference(wildcards) else [model_dir(wildcards)]


def neuron_model_source(config, input):
    """The model an extract_activations job loads: its model input where it has one, else the Hub name."""
    return str(input.model[0]) if input.model else base_model(config)
