"""Rule augment_corpus: the pre-training corpus plus adversarially word-swapped copies of every text."""
from pathlib import Path

import pandas as pd

from advlm import augment, runtime
from advlm import io as aio


def main(smk):
    params = smk.params.augment
    runtime.setup(smk.threads, params["seed"], smk.log[0])
    texts = pd.concat([aio.read_examples(path) for path in smk.input.corpus], ignore_index=True)
    augmenter = augment.build_augmenter(params["augmenter"], params, Path(smk.input.nltk_data).parent)
    augmented = augment.augment_corpus(texts, augmenter, params["seed"])
    aio.write_examples(augmented, smk.output.corpus)
    changed = (augmented["copy"] > 0).sum()
    aio.write_json({"texts": len(texts), "augmented_copies": int(changed), "params": params,
                    "provenance": runtime.provenance(params["seed"], params)}, smk.output.meta)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
