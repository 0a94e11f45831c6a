"""Rule finetune: fine-tune one (dataset, pre-training variant, method, seed) model."""
from pathlib import Path

from advlm import io as aio
from advlm import runtime, training


def main(smk):
    runtime.setup(smk.threads, smk.params.seed, smk.log[0])
    training.finetune(
        model_source=smk.params.model_source,
        train=aio.read_examples(smk.input.train),
        validation=aio.read_examples(smk.input.validation),
        out_dir=Path(smk.output.record).parent,
        hp=smk.params.training,
        method_name=smk.wildcards.method,
        method_params=smk.params.method_params,
        seed=smk.params.seed,
        num_labels=smk.params.num_labels,
        device=runtime.device(smk.params.device),
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
