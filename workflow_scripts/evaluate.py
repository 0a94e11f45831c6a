"""Rule evaluate: accuracy, macro-F1 and calibration of one model on each of its evaluation sets."""

from pathlib import Path

from advlm import artifacts, evaluation, models, runtime, timing


def main(smk):
    params = smk.params.evaluate
    runtime.setup(smk.threads, 0)
    device = runtime.device(smk.params.device, smk.params.precision)
    model_dir = str(smk.input.model)
    model = models.load_classifier(model_dir, smk.params.num_labels).to(device)
    timing.watch(model)
    tokenizer = models.load_tokenizer(model_dir)
    out_dir = Path(smk.output.evaluations)
    out_dir.mkdir(parents=True, exist_ok=True)
    for evalset in smk.params.evalsets:
        examples = artifacts.read_examples(smk.input[evalset])
        probabilities = models.predict_proba(
            model, tokenizer, examples["text"].tolist(), params["batch_size"], smk.params.max_length, device
        ).numpy()
        metrics = evaluation.classification_metrics(probabilities, examples["label"].to_numpy(), params["ece_bins"])
        predictions = examples[["id", "label"]].assign(
            prediction=probabilities.argmax(1), confidence=probabilities.max(1)
        )
        predictions.to_csv(out_dir / f"{evalset}.predictions.csv", index=False)
        artifacts.write_json(
            {
                **metrics,
                "evalset": evalset,
                "examples": str(smk.input[evalset]),
                "provenance": runtime.provenance(None, {**params, "max_length": smk.params.max_length}),
            },
            out_dir / f"{evalset}.json",
        )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
