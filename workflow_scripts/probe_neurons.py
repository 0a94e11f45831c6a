"""Rule probe_neurons: elastic-net probe refits on word activations, neuron ranking by weight mass, its stability,
specialization, the minimal neuron subset for the dataset's shared target and its random-ordering null, ablation,
selectivity against a control task, a probe-free (probeless) ranking and, for a fine-tuned model, the causal test
in its classifier (advlm.neurons.causal).

The regularization (C, l1_ratio) and the minimal subset's target are set once per dataset: the reference probe (the
start model without fine-tuning) selects (C, l1_ratio) from the grid on validation and gives the target's reference
accuracy; every other probe reads both from the reference's probe.json (input ``reference``). Or (C, l1_ratio) is
fixed in the config (neurons.regularization: {C, l1_ratio}) and the target is absolute (minimal_target: {accuracy}).
"""

import numpy as np

from advlm import artifacts, models, runtime
from advlm.neurons import analysis, causal


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


def reference_accuracy(smk) -> float | None:
    """The reference probe's mean validation accuracy over its refits; None for the reference itself."""
    if not hasattr(smk.input, "reference"):
        return None
    return artifacts.read_json(smk.input.reference)["accuracy"]["validation_refits"]["mean"]


def classifier_test(smk, activations, ranking, device) -> dict:
    """The causal test (advlm.neurons.causal) on the fine-tuned classifier, its top neurons by consensus rank."""
    settings = smk.params.neurons["causal"]
    model_dir = str(smk.input.classifier)
    model = models.load_classifier(model_dir, smk.params.num_labels).to(device).eval()
    top = np.sort(ranking.sort_values("consensus_rank")["neuron"].to_numpy()[: settings["n"]])
    evalsets = {name: artifacts.read_examples(smk.input[name]) for name in smk.params.evalsets}
    return causal.classifier_ablation(
        model,
        models.load_tokenizer(model_dir),
        evalsets,
        top,
        causal.neuron_means(activations),
        settings,
        smk.params.neurons["seed"],
        smk.params.batch_size,
        smk.params.max_length,
        device,
    )


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
        reference_accuracy=reference_accuracy(smk),
    )
    if hasattr(smk.input, "classifier"):  # the reference has no classifier
        report["classifier_ablation"] = classifier_test(smk, activations, ranking, runtime.device(smk.params.device))
    provenance = runtime.provenance(params["seed"], params)
    record = {**report, "aggregation": labels["aggregation"], "provenance": provenance}
    artifacts.write_json(record, smk.output.probe)
    ranking.to_csv(smk.output.ranking, index=False)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
