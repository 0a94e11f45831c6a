rule aggregate:
    input:
        script_libs("aggregate"),
        train_logs=[f"results/models/{model}/train_log.json" for model in model_ids(config)],
        eval=eval_targets(config),
        attacks=attack_targets(config),
        attack_tables=[path.removesuffix(".json") + ".csv" for path in attack_targets(config)],  # read beside them
        probes=probe_targets(config),
    output:
        summary=report("results/report/summary.md", category="Summary", caption="../report/summary.rst"),
        tables=multiext(
            "results/report/",
            "training.csv",
            "generalization.csv",
            "robustness.csv",
            "robustness_all_correct.csv",
            "neurons.csv",
        ),
        generalization_plot=report(
            "results/report/generalization.png", category="Generalization", caption="../report/generalization.rst"
        ),
        robustness_plot=report(
            "results/report/robustness.png", category="Robustness", caption="../report/robustness.rst"
        ),
        neurons_tag_layer_plot=report(
            "results/report/neurons_tag_layer.png", category="Neurons", caption="../report/neurons.rst"
        ),
        neurons_per_tag_plot=report(
            "results/report/neurons_per_tag.png", category="Neurons", caption="../report/neurons.rst"
        ),
    log:
        "results/logs/aggregate/aggregate.log",
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/aggregate.py"
