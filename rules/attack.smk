rule attack:
    input:
        lib_files("attacks", "models", "resources"),
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
        attack=lambda wc: stage_params(config, "attack", "recipes", "shards")
        | {"name": wc.attack, "max_length": config["model"]["max_length"]},
        shard=lambda wc: int(wc.shard),
        num_shards=config["attack"]["shards"],
        seed=config["attack"]["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/attack.py"


rule gather_attack:
    input:
        lib_files("attacks"),
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
    params:
        attack=lambda wc: stage_params(config, "attack", "recipes") | {"name": wc.attack},
        seed=config["attack"]["seed"],
    script:
        "../workflow_scripts/gather_attack.py"
