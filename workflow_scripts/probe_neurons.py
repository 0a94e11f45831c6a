"""Rule probe_neurons: elastic-net probe on word activations, neuron ranking by weight mass, specialization,
minimal neuron subset, ablation, selectivity against a control task and a probe-free (probeless) ranking.

The regularization (C, l1_ratio) is chosen once per dataset: the reference probe (the start model without
fine-tuning) selects it from the grid on validation, every other probe reads it from the reference's probe.json
(input ``reference``); or it is fixed in the config (neurons.regularization: {C, l1_ratio}).
"""

import numpy as np

from advlm import artifacts, runtime
from advlm.neurons import analysis


def regularization(smk) -> dict | None:
    """The fixed (C, l1_ratio) and where it was chosen; None for the reference probe, which chooses it."""
    setting = smk.params.neurons["regularization"]
    if setting != "reference":
        return {"C": setting["C"], "l1_ratio": setting["l1_ratio"], "chosen_on": "config"}
    if not hasattr(smk.input, "reference"):
        return None
    reference = artifacts.read_json(smk.input.reference)
    chosen = reference["hyperparameters"]
    return {"C": chosen["C"], "l1_ratio": chosen["l1_ratio"], "chosen_on": reference["model"]}


def main(smk):
    params = smk.params.neurons
    runtime.setup(smk.threads, params["seed"])
    labels = artifacts.read_json(smk.input.labels)
    activations = np.load(smk.input.activations, mmap_mode="r")  # float16 on disk; the probe reads it in chunks
    report, ranking = analysis.analyze(
        activations,
        labels["words"],
        labels[params["tagset"]],
        labels["sentence"],
        params,
        regularization(smk),
        model=smk.params.model,
    )
    provenance = runtime.provenance(params["seed"], params)
    record = {**report, "aggregation": labels["aggregation"], "provenance": provenance}
    artifacts.write_json(record, smk.output.probe)
    ranking.to_csv(smk.output.ranking, index=False)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
