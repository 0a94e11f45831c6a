rule evaluate:
    """One job per model for all its evaluation sets (in domain and out of domain): one process start and one
    model load instead of one per set. Writes <evalset>.json and <evalset>.predictions.csv per set."""
    input:
        unpack(lambda wc: evalset_inputs(config, wc.dataset)),
        library_stamp("evaluate"),
        model=model_dir,
    output:
        evaluations=directory(f"results/eval/{MODEL}"),
    log:
        f"results/logs/evaluate/{MODEL}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        evaluate=config["evaluate"],
        evalsets=lambda wc: evalsets(config, wc.dataset),
        max_length=config["model"]["max_length"],
        num_labels=len(config["data"]["labels"]),
        device=config["device"],
        precision=config["precision"],
    script:
        "../workflow_scripts/evaluate.py"
