"""Rule prepare_dataset: seeded, stratified train/validation/test splits of one configured source."""

from pathlib import Path

from advlm import data, runtime


def main(smk):
    runtime.setup(smk.threads, smk.params.settings["seed"], uses_torch=False)
    data.prepare_dataset(smk.wildcards.dataset, smk.params.source, smk.params.settings, Path(smk.output.meta).parent)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
