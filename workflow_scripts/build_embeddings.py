"""Rule build_embeddings: counter-fitted word vectors and the sentence-encoder calibration.

Writes results/resources/counterfitted/: vectors.npy, vocab.txt, nn.npy, pairs.npz (advlm.embeddings),
calibration.json (advlm.encoder_calibration) and MANIFEST.json (parameters, statistics,
input checksums and the sha256 of every file).
"""

import importlib.metadata
from pathlib import Path

from advlm import artifacts, embeddings, encoder_calibration, runtime
from advlm.attacks.resources import manifest_digest
from advlm.resources import sha256


def main(smk):
    runtime.setup(smk.threads, smk.params.calibration["seed"])
    out = Path(smk.output.embedding)
    params = {**embeddings.DEFAULTS, **smk.params.embedding}
    statistics = embeddings.build_counterfitted(smk.input.glove, smk.input.nltk_data, out, params)
    texts = artifacts.read_examples(smk.input.texts)["text"].tolist()
    calibration = encoder_calibration.calibrate_sentence_encoder(
        texts,
        out,
        smk.input.minilm,
        Path(smk.input.nltk_data).parent,
        size=smk.params.calibration["pairs"],
        seed=smk.params.calibration["seed"],
    )
    calibration["sample"]["source"] = str(smk.input.texts)
    artifacts.write_json(calibration, out / encoder_calibration.CALIBRATION_FILE)
    embeddings.write_manifest(
        out,
        {
            "method": "counter-fitting (Mrkšić et al. 2016) of GloVe 6B 50d with WordNet 3.0 synonyms and antonyms",
            "params": params,
            "calibration": {
                **smk.params.calibration,
                "thresholds": {name: entry["value"] for name, entry in calibration["thresholds"].items()},
            },
            "statistics": statistics,
            "inputs": {
                name: manifest_digest(Path(getattr(smk.input, name))) for name in ("glove", "nltk_data", "minilm")
            }
            | {"texts": sha256(smk.input.texts)},
            "numpy": importlib.metadata.version("numpy"),
            "provenance": runtime.provenance(smk.params.calibration["seed"], params),
        },
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
