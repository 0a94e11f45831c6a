rule prepare_dataset:
    input:
        library_stamp("prepare_dataset"),
        source=lambda wc: source_inputs(config, wc.dataset),
    output:
        train="results/data/{dataset}/train.jsonl",
        validation="results/data/{dataset}/validation.jsonl",
        test="results/data/{dataset}/test.jsonl",
        meta="results/data/{dataset}/meta.json",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        source=lambda wc: config["data"]["sources"][wc.dataset],
        settings=data_settings(config),
    script:
        "../workflow_scripts/prepare_dataset.py"


rule prepare_ood:
    input:
        library_stamp("prepare_ood"),
        vader="results/resources/vader",
    output:
        examples="results/data/vader/{vset}.jsonl",
        meta="results/data/vader/{vset}.meta.json",
    log:
        "results/logs/prepare_ood/{vset}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=config["data"]["vader"],
    script:
        "../workflow_scripts/prepare_ood.py"
