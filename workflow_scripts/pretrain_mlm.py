"""Rule pretrain_mlm: continued masked-LM pre-training on the clean or the augmented corpus."""

from pathlib import Path

import pandas as pd

from advlm import artifacts, mlm, runtime


def main(smk):
    params = smk.params.pretrain
    runtime.setup(smk.threads, params["seed"])
    corpus = pd.concat([artifacts.read_examples(path) for path in smk.input.corpus], ignore_index=True)
    mlm.pretrain(
        smk.params.model_source,
        corpus["text"].tolist(),
        Path(smk.output.record).parent,
        params,
        params["seed"],
        runtime.device(smk.params.device, smk.params.precision),
        checkpoint_dir=smk.params.checkpoint_dir,
        # from the config, not params: the interval does not change the result, so it must not rerun a job
        checkpoint_every=smk.config["checkpoint"]["every_steps"],
        corpus_files=list(smk.input.corpus),
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
