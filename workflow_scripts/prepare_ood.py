"""Rule prepare_ood: one VADER ground-truth set, binarised by its human rating, as an out-of-domain set."""

from advlm import data, runtime


def main(smk):
    runtime.setup(smk.threads, smk.params.settings["seed"], uses_torch=False)
    data.prepare_vader_set(smk.wildcards.vset, smk.input.vader, smk.params.settings, smk.output.examples)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
