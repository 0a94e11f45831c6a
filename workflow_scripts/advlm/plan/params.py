"""What each stage's jobs depend on, as their ``params:``: a stage's config section less the keys that only choose
which jobs exist, so that a change reruns exactly the jobs it concerns; and the pre-training runs' seeds."""

# finetune keys that choose which models exist: a change to them retrains no other model
MODEL_CHOICE_KEYS = ("methods", "seeds", "method_params", "grid", "grid_variant", "sweep")
# finetune keys that only the methods' own epochs read: a change to them trains no warm start again
METHOD_PHASE_KEYS = ("epochs", "extra_epochs", "selection", "budget_ramp_epochs")


def stage_params(config, section, *exclude):
    """A stage's config section minus the keys that only choose which jobs exist (their change reruns nothing)."""
    return {key: value for key, value in config[section].items() if key not in exclude}


def data_settings(config):
    data = config["data"]
    return {key: data[key] for key in ("labels", "seed", "split", "max_examples")}


def augment_params(config):
    """augment's settings; max_candidates and min_cos_sim only for the embedding augmenter, which alone reads
    them (so that their schema defaults do not rerun the wordnet augmentation)."""
    augment = config["augment"]
    embedding_only = () if augment["augmenter"] == "embedding" else ("max_candidates", "min_cos_sim")
    return {key: value for key, value in augment.items() if key not in embedding_only}


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


def warm_start_params(config):
    """The warm start's training parameters: the finetune section without the keys that choose which models exist
    or that only the methods' own epochs read, its epochs the warm-start epochs."""
    params = stage_params(config, "finetune", *MODEL_CHOICE_KEYS, *METHOD_PHASE_KEYS)
    return params | {"epochs": config["finetune"]["warm_start_epochs"], "max_length": config["model"]["max_length"]}


def finetune_params(config):
    """The fine-tuning jobs' training parameters: the keys that choose which models exist are left out, so that a
    new seed or sweep point reruns no other model."""
    return stage_params(config, "finetune", *MODEL_CHOICE_KEYS) | {"max_length": config["model"]["max_length"]}


# neurons keys that only the probe corpus's and the activations' jobs read
CORPUS_KEYS = ("corpus_splits", "num_sentences", "aggregation", "batch_size")


def probe_params(config, seed):
    """A probe job's settings: the neurons section less the corpus's keys, its seed drawn from (neurons.seed, the
    model's fine-tuning seed) by numpy's SeedSequence. Every random part of the measurement (the refits' sentence
    splits and train samples, the null's orderings, the random neurons ablated, the control tasks) is then shared by
    the models of one seed, whose paired differences it barely moves, and drawn anew for every seed, so that the
    claims' interval over seeds carries the probe's noise instead of one fixed draw's bias for all of them."""
    import numpy as np

    neurons = stage_params(config, "neurons", *CORPUS_KEYS)
    drawn = int(np.random.SeedSequence([neurons["seed"], int(seed)]).generate_state(1)[0])
    return neurons | {"seed": drawn, "seed_drawn_from": [neurons["seed"], int(seed)]}
