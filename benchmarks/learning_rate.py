"""Validation accuracy per epoch of plain fine-tuning at several learning rates (not a test): the measurement
behind the default experiment's ``finetune.lr`` (docs/protocol.md).

Each (learning rate, seed) trains MiniLM from the workflow's start model on the first ``--train`` examples of the
default experiment's training split, for ``--epochs`` epochs, with every other setting of ``config.yaml``'s
finetune section, and prints one row per run: validation accuracy after each epoch (epoch 0: the start model).
Runs go two at a time, one thread each, as the workflow's fine-tuning jobs do on two cores.

    .venv/bin/python benchmarks/learning_rate.py --lr 5e-5 1e-4 2e-4 --seeds 1 2 --epochs 4
"""

from __future__ import annotations

import argparse
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def run(lr: float, seed: int, args) -> tuple[float, int, list[float], float]:
    from advlm import artifacts, runtime, training

    runtime.setup(1, seed)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    hp = {key: config["finetune"][key] for key in ("batch_size", "eval_batch_size", "weight_decay", "warmup_ratio")}
    hp |= {"lr": lr, "epochs": args.epochs, "max_grad_norm": 1.0, "max_length": config["model"]["max_length"]}
    data = ROOT / "results/data/rotten_tomatoes"
    train = artifacts.read_examples(data / "train.jsonl").head(args.train)
    validation = artifacts.read_examples(data / "validation.jsonl")
    with tempfile.TemporaryDirectory() as out:
        record = training.finetune(
            str(ROOT / "results/resources/minilm"),
            train,
            validation,
            out,
            hp,
            "base",
            {},
            seed,
            2,
            runtime.device("cpu", args.precision),
        )
    curve = [record["start_validation"]["accuracy"]] + [e["validation"]["accuracy"] for e in record["history"]]
    return lr, seed, curve, record["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, nargs="+", default=[5e-5, 1e-4, 2e-4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    jobs = [(lr, seed) for lr in args.lr for seed in args.seeds]
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(run, *zip(*jobs), [args] * len(jobs)))
    print("| lr | seed | " + " | ".join(f"epoch {e}" for e in range(args.epochs + 1)) + " | seconds |")
    print("|---|---|" + "---|" * (args.epochs + 2))
    for lr, seed, curve, seconds in results:
        print(f"| {lr:g} | {seed} | " + " | ".join(f"{a:.3f}" for a in curve) + f" | {seconds:.0f} |")


if __name__ == "__main__":
    main()
