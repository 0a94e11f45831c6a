"""Rule aggregate: tables, Markdown summary and plots over every model of the experiment."""
from pathlib import Path

from advlm import report, runtime


def main(smk):
    runtime.setup(smk.threads, None)
    inputs = {name: list(smk.input[name]) for name in ("train_logs", "eval", "attacks", "probes")}
    report.write_report(inputs, Path(smk.output.summary).parent)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
