rule aggregate:
    input:
        library_stamp("aggregate"),
        train_logs=train_logs(config),
        warm_starts=warm_start_logs(config),
        evaluations=eval_targets(config),
        attacks=attack_targets(config),
        attack_examples=[path.removesuffix(".json") + ".csv" for path in attack_targets(config)],
        probes=probe_targets(config),
        description=str(Path(workflow.basedir) / "report" / "workflow.rst"),
    output:
        summary=report("results/report/summary.md", category="1. Claims", caption="../report/summary.rst"),
        landing=LANDING_PAGE,
        claims_headline_plot=report(
            "results/report/claims_headline.png", category="1. Claims", caption="../report/claims_headline.rst"
        ),
        claims_plot=report("results/report/claims.png", category="1. Claims", caption="../report/claims.rst"),
        tables=multiext(
            "results/report/",
            "claims.csv",
            "training.csv",
            "generalization.csv",
            "robustness.csv",
            "robustness_all_correct.csv",
            "neurons.csv",
            "tradeoff.csv",
        ),
        generalization_plot=report(
            "results/report/generalization.png", category="2. Generalization", caption="../report/generalization.rst"
        ),
        robustness_plot=report(
            "results/report/robustness.png", category="3. Robustness", caption="../report/robustness.rst"
        ),
        tradeoff_plot=report("results/report/tradeoff.png", category="3. Robustness", caption="../report/tradeoff.rst"),
        neurons_tag_layer_plot=report(
            "results/report/neurons_tag_layer.png", category="4. Neurons", caption="../report/neurons.rst"
        ),
        neurons_per_tag_plot=report(
            "results/report/neurons_per_tag.png", category="4. Neurons", caption="../report/neurons.rst"
        ),
        learning_curves_plot=report(
            "results/report/learning_curves.png", category="5. Training", caption="../report/training.rst"
        ),
        convergence_table=report(
            "results/report/convergence.csv", category="5. Training", caption="../report/training.rst"
        ),
        neurons_layers_plot=report(
            "results/report/neurons_layers.png", category="4. Neurons", caption="../report/neurons_layers.rst"
        ),
        neurons_stability_plot=report(
            "results/report/neurons_stability.png", category="4. Neurons", caption="../report/neurons_stability.rst"
        ),
    log:
        "results/logs/aggregate/aggregate.log",
    priority: job_priority("aggregate")
    localrule: True
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        claims=config["claims"],
        experiment=claims_experiment(config),
    script:
        "../workflow_scripts/aggregate.py"
