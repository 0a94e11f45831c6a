"""Rule warm_start: the clean epochs that every method of one (dataset, pre-training variant, seed) continues from."""

from pathlib import Path

from advlm import artifacts, runtime, training


def main(smk):
    runtime.setup(smk.threads, smk.params.seed)
    training.finetune(
        model_source=smk.params.model_source,
        train=artifacts.read_examples(smk.input.train),
        validation=artifacts.read_examples(smk.input.validation),
        out_dir=Path(smk.output.record).parent,
        hp=smk.params.training,
        method_name="base",
        method_params={},
        seed=smk.params.seed,
        num_labels=smk.params.num_labels,
        device=runtime.device(smk.params.device, smk.params.precision),
        checkpoint_dir=smk.params.checkpoint_dir,
        checkpoint_every=smk.config["checkpoint"]["every_steps"],
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
