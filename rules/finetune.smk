rule warm_start:
    """The clean epochs every method of a (dataset, pre-training variant, seed) continues from
    (finetune.warm_start_epochs): planned once, whatever the methods and their parameters."""
    input:
        library_stamp("finetune"),
        start=lambda wc: start_model_inputs(config, wc.pretrain, wc.seed),
        train=lambda wc: split_path(wc.dataset, "train"),
        validation=lambda wc: split_path(wc.dataset, "validation"),
    output:
        model=directory(f"results/warm_start/{WARM_START}/model"),
        record=f"results/warm_start/{WARM_START}/train_log.json",
    log:
        f"results/logs/warm_start/{WARM_START}.log",
    benchmark:
        f"results/benchmarks/warm_start/{WARM_START}.tsv"
    priority: 2  # every method of the seed waits for it
    conda:
        "../envs/workflow.yaml"
    threads: threads_up_to(4)
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=1,
    params:
        model_source=lambda wc, input: model_source(config, input),
        training=warm_start_params(config),
        method_params={},
        seed=lambda wc: int(wc.seed),
        num_labels=len(config["data"]["labels"]),
        device=config["device"],
        precision=config["precision"],
        checkpoint_dir=f"results/checkpoints/warm_start/{WARM_START}",
    script:
        "../workflow_scripts/finetune.py"


rule finetune:
    input:
        unpack(lambda wc: method_inputs(config, wc)),
        library_stamp("finetune"),
        start=lambda wc: finetune_start_inputs(config, wc),
        train=lambda wc: split_path(wc.dataset, "train"),
        validation=lambda wc: split_path(wc.dataset, "validation"),
    output:
        model=directory(f"results/models/{MODEL}/model"),
        record=f"results/models/{MODEL}/train_log.json",
    log:
        f"results/logs/finetune/{MODEL}.log",
    benchmark:
        f"results/benchmarks/finetune/{MODEL}.tsv"
    priority: 1  # training first (advaug waits for base and attack_train); the many 1-thread leaves fill in
    conda:
        "../envs/workflow.yaml"
    threads: threads_up_to(4)
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=1,
    params:
        model_source=lambda wc, input: model_source(config, input),
        # the keys that choose which models exist are left out: a new seed or sweep point reruns no other model
        training=finetune_params(config),
        method_params=lambda wc: finetune_method_params(config, wc.method),
        # a2t attacks as it trains
        attack=lambda wc: attack_recipe_params(config, "a2t") if point_method(config, wc.method) == "a2t" else {},
        seed=lambda wc: int(wc.seed),
        num_labels=len(config["data"]["labels"]),
        device=config["device"],
        precision=config["precision"],
        checkpoint_dir=f"results/checkpoints/finetune/{MODEL}",  # not an output: it must survive a failed job
    script:
        "../workflow_scripts/finetune.py"


rule attack_train:
    """advaug's adversarial examples: attack a seeded share of the training set once with the trained base model
    of the same pre-training variant and seed (finetune.method_params.advaug and its sweep points: attack, share,
    query_budget; advaug_examples)."""
    input:
        unpack(lambda wc: attack_inputs(config, advaug_examples(config)[wc.examples]["attack"], wc.seed)),
        library_stamp("attack_train"),
        model="results/models/{dataset}/{pretrain}/base/seed{seed}/model",
        train=lambda wc: split_path(wc.dataset, "train"),
        nltk_data="results/resources/nltk_data",
    output:
        csv=ADVAUG_EXAMPLES,
        record=ADVAUG_EXAMPLES.removesuffix(".csv") + ".json",
    log:
        "results/logs/attack_train/{dataset}/{pretrain}/seed{seed}/{examples}.log",
    benchmark:
        "results/benchmarks/attack_train/{dataset}/{pretrain}/seed{seed}/{examples}.tsv"
    priority: 2  # on advaug's critical path: base -> attack_train -> advaug
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=480,
        gpu=1,
    params:
        # the example set's advaug parameters; weight, which only fine-tuning reads, left out
        advaug=lambda wc: {key: value for key, value in advaug_examples(config)[wc.examples].items() if key != "weight"},
        attack=lambda wc: attack_recipe_params(config, advaug_examples(config)[wc.examples]["attack"]),
        seed=lambda wc: int(wc.seed),
        device=config["device"],
        precision=config["precision"],
    script:
        "../workflow_scripts/attack_train.py"
