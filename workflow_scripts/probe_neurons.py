"""Rule probe_neurons: elastic-net probe on word activations, neuron ranking by weight mass, specialization,
minimal neuron subset, ablation and selectivity against a control task."""
import numpy as np

from advlm import io as aio
from advlm import neurons, runtime


def main(smk):
    params = smk.params.neurons
    runtime.setup(smk.threads, params["seed"])
    labels = aio.read_json(smk.input.labels)
    activations = np.load(smk.input.activations, mmap_mode="r")  # float16 on disk; the probe reads it in chunks
    report, ranking = neurons.probe(activations, labels["words"], labels[params["tagset"]], labels["sentence"],
                                    params)
    report["aggregation"] = labels["aggregation"]
    report["provenance"] = runtime.provenance(params["seed"], params)
    aio.write_json(report, smk.output.probe)
    ranking.to_csv(smk.output.ranking, index=False)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
