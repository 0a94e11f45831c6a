"""Rule augment_corpus: the pre-training corpus plus adversarially word-swapped copies of every text."""

from pathlib import Path

import pandas as pd

from advlm import artifacts, augment, runtime


def main(smk):
    params = smk.params.augment
    runtime.setup(smk.threads, params["seed"])
    texts = pd.concat([artifacts.read_examples(path) for path in smk.input.corpus], ignore_index=True)
    # results/resources/counterfitted, an input only of the embedding augmenter
    embedding_dir = smk.input.get("counterfitted")
    augmenter = augment.build_augmenter(params["augmenter"], params, Path(smk.input.nltk_data).parent, embedding_dir)
    augmented = augment.augment_corpus(texts, augmenter, params["seed"])
    artifacts.write_examples(augmented, smk.output.corpus)
    changed = (augmented["copy"] > 0).sum()
    meta = {"texts": len(texts), "augmented_copies": int(changed), "params": params}
    if embedding_dir is not None:  # which vectors the swaps came from (sha256 from their MANIFEST.json)
        embedding = augmenter.transformation.embedding
        meta["embedding"] = {
            "path": str(embedding_dir),
            "vocab_size": embedding.vocab_size,
            "vectors_sha256": embedding.vectors_sha256,
        }
    artifacts.write_json(meta | {"provenance": runtime.provenance(params["seed"], params)}, smk.output.meta)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
