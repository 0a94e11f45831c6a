rule finetune:
    input:
        lib_files("training", "models", "evaluation", "resources"),
        start=lambda wc: start_model_inputs(config, wc.pretrain),
        train=lambda wc: split_path(wc.dataset, "train"),
        validation=lambda wc: split_path(wc.dataset, "validation"),
    output:
        model=directory(f"results/models/{MODEL}/model"),
        record=f"results/models/{MODEL}/train_log.json",
    log:
        f"results/logs/finetune/{MODEL}.log",
    benchmark:
        f"results/benchmarks/finetune/{MODEL}.tsv"
    conda:
        "../envs/workflow.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=1,
    params:
        model_source=lambda wc, input: model_source(config, input),
        training=stage_params(config, "finetune", "methods", "seeds", "method_params")
        | {"max_length": config["model"]["max_length"]},
        method_params=lambda wc: config["finetune"]["method_params"].get(wc.method, {}),
        seed=lambda wc: int(wc.seed),
        num_labels=len(config["data"]["labels"]),
        device=config["device"],
    script:
        "../workflow_scripts/finetune.py"
