"""Rule aggregate: tables, Markdown summary and plots over every model of the experiment."""

from pathlib import Path

from advlm import report, runtime, training_report


def main(smk):
    runtime.setup(smk.threads, None, uses_torch=False)
    names = ("train_logs", "warm_starts", "attacks", "attack_examples", "probes")
    inputs = {name: list(smk.input[name]) for name in names}
    # each evaluate directory holds exactly the model's evaluation sets: <evalset>.json, <evalset>.predictions.csv
    predictions = [
        path for directory in smk.input.evaluations for path in sorted(Path(directory).glob("*.predictions.csv"))
    ]
    inputs["predictions"] = [str(path) for path in predictions]
    inputs["eval"] = [str(path).removesuffix(".predictions.csv") + ".json" for path in predictions]
    report.write_report(
        inputs, Path(smk.output.summary).parent, smk.params.claims, smk.params.experiment, smk.input.description
    )
    training_report.write(
        inputs["train_logs"], inputs["warm_starts"], smk.output.learning_curves_plot, smk.output.convergence_table
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
