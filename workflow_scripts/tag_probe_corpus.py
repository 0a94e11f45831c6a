"""Rule tag_probe_corpus: sample sentences of the dataset's held-out splits and tag them with spaCy for the neuron
probes (silver POS tags)."""

import collections
import json

from advlm import artifacts, runtime
from advlm.neurons import tagging


def main(smk):
    params = smk.params.neurons
    runtime.setup(smk.threads, params["seed"], uses_torch=False)
    texts = [text for path in smk.input.texts for text in artifacts.read_examples(path)["text"].tolist()]
    nlp = tagging.load_tagger()
    records = tagging.tag_corpus(texts, params["num_sentences"], params["seed"], nlp)
    artifacts.write_lines((json.dumps(record, ensure_ascii=False) for record in records), smk.output.corpus)
    artifacts.write_json(
        {
            "source": {"splits": params["corpus_splits"], "files": list(smk.input.texts)},
            "tags": "silver: spaCy's tagger (no gold-tagged English corpus ships in a registry package)",
            "num_texts": len(texts),
            "num_sentences_requested": params["num_sentences"],
            "num_sentences": len(records),
            "num_words": sum(len(r["words"]) for r in records),
            "seed": params["seed"],
            "tagger": tagging.tagger_info(nlp),
            "tag_counts": {
                tagset: dict(collections.Counter(t for r in records for t in r[tagset]).most_common())
                for tagset in tagging.TAGSETS
            },
        },
        smk.output.meta,
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
