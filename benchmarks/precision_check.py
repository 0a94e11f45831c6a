"""Do bf16 model passes move the results? fp32 against bf16 autocast for trained classifiers (not a test).

For each model directory: accuracy on an evaluation set in fp32 and in bf16 autocast, the predictions that
flip, the largest change of a class probability, and the time of each pass (bf16 pays only on CPUs with bf16
units, AMX; elsewhere oneDNN emulates it, far slower). Compare the accuracy change with the seed-to-seed spread
of the same models (the report's training table): within it, bf16 does not move the results.

    .venv/bin/python benchmarks/precision_check.py results/models/rotten_tomatoes/*/*/seed1/model
    .venv/bin/python benchmarks/precision_check.py MODEL... --examples results/data/rotten_tomatoes/test.jsonl
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--examples", default="results/data/rotten_tomatoes/test.jsonl")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    from advlm import artifacts, models, runtime

    runtime.setup(args.threads, 0)
    device = runtime.device(args.device)
    examples = artifacts.read_examples(args.examples)
    texts, labels = examples["text"].tolist(), examples["label"].to_numpy()
    print(f"{len(texts)} examples of {args.examples}; device {device}, {args.threads} thread(s)")
    print("| model | accuracy fp32 | bf16 | change | predictions flipped | max prob change | s fp32 | s bf16 |")
    print("|---|---|---|---|---|---|---|---|")
    for model_dir in args.models:
        model = models.load_classifier(str(model_dir), 2).to(device)
        tokenizer = models.load_tokenizer(str(model_dir))
        probabilities, seconds = {}, {}
        for precision in ("fp32", "bf16"):
            runtime.set_precision(precision, device)
            began = time.perf_counter()
            probabilities[precision] = models.predict_proba(
                model, tokenizer, texts, args.batch_size, args.max_length, device
            ).numpy()
            seconds[precision] = time.perf_counter() - began
        accuracy = {p: float((probabilities[p].argmax(1) == labels).mean()) for p in probabilities}
        flipped = int((probabilities["fp32"].argmax(1) != probabilities["bf16"].argmax(1)).sum())
        change = float(abs(probabilities["fp32"] - probabilities["bf16"]).max())
        print(
            f"| {model_dir} | {accuracy['fp32']:.4f} | {accuracy['bf16']:.4f} | "
            f"{accuracy['bf16'] - accuracy['fp32']:+.4f} | {flipped} | {change:.4f} | "
            f"{seconds['fp32']:.1f} | {seconds['bf16']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
