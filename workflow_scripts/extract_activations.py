"""Rule extract_activations: per-word activations of every layer of one model on the tagged probe corpus."""

import numpy as np
import pandas as pd

from advlm import artifacts, runtime
from advlm.neurons import activations as word_activations
from advlm.neurons import tagging


def main(smk):
    params = smk.params.neurons
    runtime.setup(smk.threads, params["seed"])
    corpus = pd.read_json(smk.input.corpus, orient="records", lines=True)
    model_source = smk.params.model_source  # a fine-tuned model's directory, or the start model for the reference
    activations, kept = word_activations.extract_activations(
        model_source,
        corpus["words"].tolist(),
        aggregation=params["aggregation"],
        batch_size=params["batch_size"],
        max_length=params["max_length"],
        device=runtime.device(smk.params.device),
        out_path=smk.output.activations,
    )
    activations.flush()
    sentence = np.repeat(np.arange(len(corpus)), corpus["words"].str.len())
    position = np.concatenate([np.arange(len(words)) for words in corpus["words"]])
    flat = {column: np.concatenate(corpus[column].to_numpy()) for column in ("words", *tagging.TAGSETS)}
    artifacts.write_json(
        {
            "model": model_source,
            "aggregation": params["aggregation"],
            "shape": list(activations.shape),
            "num_words_dropped": int((~kept).sum()),
            "sentence": sentence[kept].tolist(),
            "position": position[kept].tolist(),
            **{column: values[kept].tolist() for column, values in flat.items()},
        },
        smk.output.labels,
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
