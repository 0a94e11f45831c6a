rule evaluate:
    input:
        script_libs("evaluate"),
        model=model_dir,
        examples=lambda wc: evalset_path(config, wc.dataset, wc.evalset),
    output:
        metrics=f"results/eval/{MODEL}/{{evalset}}.json",
        predictions=f"results/eval/{MODEL}/{{evalset}}.predictions.csv",
    log:
        f"results/logs/evaluate/{MODEL}/{{evalset}}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        evaluate=config["evaluate"],
        max_length=config["model"]["max_length"],
        num_labels=len(config["data"]["labels"]),
        device=config["device"],
    script:
        "../workflow_scripts/evaluate.py"
