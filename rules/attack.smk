rule build_embeddings:
    input:
        library_stamp("build_embeddings"),
        glove="results/resources/glove",
        nltk_data="results/resources/nltk_data",
        minilm="results/resources/minilm",
        # the calibration texts: the training split of attack.calibration.dataset, else of the first dataset
        texts=split_path(config["attack"]["calibration"].get("dataset") or config["datasets"][0], "train"),
    output:
        embedding=directory("results/resources/counterfitted"),
    log:
        "results/logs/build_embeddings/build_embeddings.log",
    benchmark:
        "results/benchmarks/build_embeddings/build_embeddings.tsv"
    priority: 1  # textfooler, a2t and the a2t method wait for it
    conda:
        "../envs/workflow.yaml"
    threads: threads_up_to(2)
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        embedding=config["attack"]["embedding"],
        calibration=config["attack"]["calibration"]
        | {"dataset": config["attack"]["calibration"].get("dataset") or config["datasets"][0]},
    script:
        "../workflow_scripts/build_embeddings.py"


rule attack:
    input:
        unpack(lambda wc: attack_inputs(config, wc.attack, wc.seed)),
        library_stamp("attack"),
        model=model_dir,
        test=lambda wc: split_path(wc.dataset, "test"),
        nltk_data="results/resources/nltk_data",
    output:
        csv=f"results/attacks/{MODEL}/{{attack}}/shard{{shard}}.csv",
        record=f"results/attacks/{MODEL}/{{attack}}/shard{{shard}}.json",
    log:
        f"results/logs/attack/{MODEL}/{{attack}}/shard{{shard}}.log",
    benchmark:
        f"results/benchmarks/attack/{MODEL}/{{attack}}/shard{{shard}}.tsv"
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,
    params:
        attack=lambda wc: attack_params(config, wc.attack),
        shard=lambda wc: int(wc.shard),
        num_shards=config["attack"]["shards"],
        device=config["device"],
        precision=config["precision"],
    script:
        "../workflow_scripts/attack.py"


rule gather_attack:
    input:
        library_stamp("gather_attack"),
        shards=lambda wc: attack_shards(config, wc),
        records=lambda wc: [Path(path).with_suffix(".json") for path in attack_shards(config, wc)],
    output:
        csv=f"results/attacks/{MODEL}/{{attack}}.csv",
        summary=f"results/attacks/{MODEL}/{{attack}}.json",
    log:
        f"results/logs/gather_attack/{MODEL}/{{attack}}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    # no params: the shards' records say what ran (and must agree), and a changed setting reruns the shards
    script:
        "../workflow_scripts/gather_attack.py"
