"""What the default experiment plans (advlm.plan.targets, paths, model_sources, attacks, inputs, params): its models,
their start models and pre-training runs, the attacks' sample sizes and the neuron probes' reference."""

from smk import config_with

from advlm.plan import attacks, inputs, model_sources, params, paths, points, targets


class Wildcards(dict):
    """A job's wildcards as the rules' functions see them: by name and by attribute."""

    __getattr__ = dict.__getitem__


def test_pretraining_is_replicated_per_seed_or_shared():
    """per_seed: seed s's models start from the variant's run of seed s, with a seed of its own; once: one run."""
    config = config_with()
    starts = {seed: model_sources.start_model_inputs(config, "clean", seed) for seed in config["finetune"]["seeds"]}
    assert starts == {seed: [f"results/pretrain/clean/seed{seed}/model"] for seed in config["finetune"]["seeds"]}
    seeds = [
        params.pretrain_params(config, variant, f"seed{seed}")["seed"]
        for variant in ("clean", "augmented")
        for seed in (1, 2, 3)
    ]
    assert seeds[:3] == seeds[3:] and len(set(seeds[:3])) == 3  # the variants of a seed pair up; seeds differ
    assert config["pretrain"]["seed"] not in seeds and config["attack"]["masked_lm_seed"] not in seeds
    shared = config_with(pretrain__replicate="once")
    assert {tuple(model_sources.start_model_inputs(shared, "augmented", seed)) for seed in (1, 2, 3)} == {
        ("results/pretrain/augmented/shared/model",)
    }
    assert params.pretrain_params(shared, "clean", "shared")["seed"] == config["pretrain"]["seed"]
    assert model_sources.start_model_inputs(config, "none", 1) == ["results/resources/minilm"]  # no pre-training run


def test_default_experiment_plan():
    config = config_with()
    plan = {(m["pretrain"], m["method"]) for m in targets.models(config)}
    assert plan == {
        ("none", "base"),
        ("clean", "base"),
        ("augmented", "base"),
        ("none", "advaug"),
        ("none", "a2t"),
        ("none", "pgd"),
        ("none", "freelb"),
        ("none", "lds"),
    }
    # issue 20: enough seeds for the claims to pair over, the primary attack (the robustness claims' endpoint)
    # attacks the most examples per model; the secondary attacks attack fewer, each its own (issue 30: 60 -> 30, the
    # full-strength training's extensions paid for within the 2 hours; experiments/decide_cpu.yaml attacks 60)
    assert len(config["finetune"]["seeds"]) >= 3 and config["attack"]["sample_size"] >= 30
    primary, *secondaries = config["attack"]["recipes"]
    assert attacks.attack_recipe_params(config, primary)["sample_size"] == config["attack"]["sample_size"]
    assert [attacks.attack_recipe_params(config, recipe)["sample_size"] for recipe in secondaries] == [12, 12]
    changed = config_with(attack__secondary_share=0.5)  # a change of the secondaries' size reruns only their attacks
    assert attacks.attack_params(changed, primary) == attacks.attack_params(config, primary)
    assert [attacks.attack_recipe_params(changed, recipe)["sample_size"] for recipe in secondaries] == [15, 15]
    assert len(config["attack"]["recipes"]) >= 3 and set(config["pretrain"]["variants"]) == {
        "none",
        "clean",
        "augmented",
    }
    every = targets.models(config_with(finetune__grid="every"))
    assert len(every) == 3 * 6 * len(config["finetune"]["seeds"])
    partial = config_with(finetune__method_params={"advaug": {"share": 0.5}})  # the schema fills in the rest
    assert points.method_params(partial, "advaug") == {
        "attack": "a2t",
        "share": 0.5,
        "query_budget": 200,
        "weight": 1.0,
    }
    assert paths.evalsets(config, "rotten_tomatoes") == ["test", "imdb", "amazon", "tweets", "nyt"]
    assert paths.evalset_path(config, "rotten_tomatoes", "imdb") == "results/data/imdb/test.jsonl"
    assert paths.evalset_path(config, "rotten_tomatoes", "tweets") == "results/data/vader/tweets.jsonl"
    assert paths.corpus_paths(config, "clean") == ["results/data/rotten_tomatoes/train.jsonl"]


def test_a_jobs_parameters_leave_out_what_only_chooses_other_jobs():
    """A new seed, method or sweep point changes no existing model's parameters; the method phase's epochs change
    no warm start's; an attack's options change no other attack's."""
    config = config_with()
    more = config_with(finetune__seeds=[1, 2, 3, 4], finetune__sweep={"pgd": {"epsilon": [0.1]}})
    more["finetune"]["methods"] = [*config["finetune"]["methods"], "ascc"]
    assert params.finetune_params(more) == params.finetune_params(config)
    assert params.warm_start_params(config_with(finetune__epochs=9)) == params.warm_start_params(config)
    assert params.finetune_params(config_with(finetune__epochs=9)) != params.finetune_params(config)
    options = config_with()
    options["attack"]["options"]["a2t"]["max_candidates"] = 7
    assert attacks.attack_params(options, "pwws") == attacks.attack_params(config, "pwws")
    assert attacks.attack_params(options, "a2t") != attacks.attack_params(config, "a2t")


def test_a_probes_random_draws_are_shared_within_a_seed_and_new_for_every_seed():
    """The probes of one seed's models share their refit splits, null orderings and ablated random neurons (paired
    differences), each seed draws its own (the claims' interval over seeds carries the probe's noise); the corpus's
    keys change no probe."""
    config = config_with()
    one, two = params.probe_params(config, "1"), params.probe_params(config, 2)
    assert one == params.probe_params(config, 1) and one["seed"] != two["seed"]
    assert one["seed_drawn_from"] == [config["neurons"]["seed"], 1] and one["refits"] == config["neurons"]["refits"]
    assert params.probe_params(config_with(neurons__seed=8), 1)["seed"] != one["seed"]
    assert params.probe_params(config_with(neurons__num_sentences=10), 1) == one
    assert not set(params.CORPUS_KEYS) & set(one)


def test_neuron_reference_probe_and_its_inputs():
    config = config_with()
    reference = "rotten_tomatoes/none/pretrained/seed0"
    probes = targets.probe_targets(config)
    assert probes[0] == f"results/neurons/{reference}/probe.json"
    assert len(probes) == len(config["datasets"]) + len(targets.models(config))
    base = Wildcards(dataset="rotten_tomatoes", pretrain="none", method="base", seed="1")
    pretrained = Wildcards(dataset="rotten_tomatoes", pretrain="none", method="pretrained", seed="0")
    assert model_sources.neuron_model_inputs(config, base) == ["results/models/rotten_tomatoes/none/base/seed1/model"]
    assert model_sources.neuron_model_inputs(config, pretrained) == ["results/resources/minilm"]  # the start model
    # the reference sets the shared target, so every other probe reads it, whatever the regularization; the
    # causal test reads the model's classifier and its evaluation sets
    read = inputs.reference_probe_inputs(config, base)
    assert (
        read["reference"] == probes[0] and read["classifier"] == "results/models/rotten_tomatoes/none/base/seed1/model"
    )
    assert set(read) - {"reference", "classifier"} == set(inputs.evalset_inputs(config, "rotten_tomatoes"))
    assert inputs.reference_probe_inputs(config, pretrained) == {}  # the reference chooses the regularization


def test_what_a_method_reads_besides_its_start_model():
    config = config_with(finetune__warm_start_epochs=0)
    seed1 = {"dataset": "rotten_tomatoes", "pretrain": "none", "seed": "1"}
    assert inputs.method_inputs(config, Wildcards(seed1, method="advaug")) == {
        "adversarial_examples": "results/advaug/rotten_tomatoes/none/seed1/adversarial.csv"
    }
    assert set(inputs.method_inputs(config, Wildcards(seed1, method="a2t"))) == {
        "counterfitted",
        "sentence_encoder",
        "nltk_data",
    }
    assert inputs.method_inputs(config, Wildcards(seed1, method="pgd")) == {}
    # without a warm start a method starts from its variant's model; with one, from the seed's warm start
    assert model_sources.finetune_start_inputs(config, Wildcards(seed1, method="pgd")) == ["results/resources/minilm"]
    assert model_sources.finetune_start_inputs(config_with(), Wildcards(seed1, method="pgd")) == [
        "results/warm_start/rotten_tomatoes/none/seed1/model"
    ]
    assert targets.warm_starts(config) == [] and len(targets.warm_starts(config_with())) == 3 * 3
