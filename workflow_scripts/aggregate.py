"""Rule aggregate: tables, Markdown summary and plots over every model of the experiment."""

from pathlib import Path

from advlm import report, runtime


def main(smk):
    runtime.setup(smk.threads, None)
    names = ("train_logs", "eval", "predictions", "attacks", "attack_examples", "probes")
    inputs = {name: list(smk.input[name]) for name in names}
    report.write_report(inputs, Path(smk.output.summary).parent, smk.params.claims, smk.params.experiment)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
