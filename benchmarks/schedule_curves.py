"""Learning curves under the training protocol (not a test): the measurement behind ``finetune.epochs`` and the
convergence check's margins (docs/protocol.md).

Per seed, the shared clean warm start (``finetune.warm_start_epochs``), then each method from it for ``--epochs``
epochs with every other setting of ``config.yaml``'s finetune section (the budget ramp, the constant learning rate),
on the default experiment's training and validation splits (``results/data``, made by the workflow's
prepare_dataset). One row per (method, seed): validation accuracy and mean training loss after every epoch, the
budget scale the epoch ended at, and the convergence check of the run cut after each epoch (from ``--min-epochs``
on), so that one run shows where a shorter schedule would have been flagged. Runs go two at a time, one thread each.

    .venv/bin/python benchmarks/schedule_curves.py --methods pgd freelb base lds --seeds 1 3 --epochs 5 --out curves/

Each run's training record is written to ``--out`` as ``<method>-seed<k>.json`` as soon as it is trained (the
printed tables can be made again from them with ``--from-records``).
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


def _finetune(source, out, hp, method, seed, args, name=None):
    from advlm import artifacts, runtime, training

    runtime.setup(1, seed)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    data = ROOT / "results/data/rotten_tomatoes"
    train = artifacts.read_examples(data / "train.jsonl")
    validation = artifacts.read_examples(data / "validation.jsonl")
    params = config["finetune"]["method_params"][method]
    record = training.finetune(source, train, validation, out, hp, method, params, seed, 2,
                               runtime.device("cpu", args.precision))  # fmt: skip
    if args.out:
        artifacts.write_json(record, Path(args.out) / f"{name or method}-seed{seed}.json")
    return record


def cuts(record: dict, args) -> dict:
    """The convergence check of the run cut after each epoch from ``--min-epochs`` on."""
    import numpy as np

    from advlm import artifacts, convergence

    labels = artifacts.read_examples(ROOT / "results/data/rotten_tomatoes/validation.jsonl")["label"].to_numpy()
    correct = [np.array([c == "1" for c in epoch]) for epoch in record["validation_correct"]]
    losses = [e["train_loss"] for e in record["history"]]
    return {
        cut: convergence.check(correct[: cut + 1], cut, labels, losses[:cut])
        for cut in range(args.min_epochs, len(correct))
    }


def run(seed: int, methods: list[str], args) -> list[tuple]:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    finetune = config["finetune"]
    keys = ("batch_size", "eval_batch_size", "weight_decay", "warmup_ratio", "lr", "max_grad_norm")
    hp = {key: finetune[key] for key in keys} | {"max_length": config["model"]["max_length"]}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = _finetune(str(ROOT / "results/resources/minilm"), Path(tmp) / "warm",
                            hp | {"epochs": finetune["warm_start_epochs"]}, "base", seed, args, "warm")  # fmt: skip
        method_hp = hp | {"epochs": args.epochs, "budget_ramp_epochs": finetune["budget_ramp_epochs"]}
        for method in methods:
            record = _finetune(str(Path(tmp) / "warm/model"), Path(tmp) / method, method_hp, method, seed, args)
            rows.append((method, seed, warm["history"][-1]["validation"]["accuracy"], record))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["base", "pgd", "freelb", "lds"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--min-epochs", type=int, default=2)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--out", help="folder for the training records")
    parser.add_argument("--from-records", help="print the tables of the records in this folder instead of training")
    args = parser.parse_args()
    if args.from_records:
        results = [
            _from_record(path)
            for path in sorted(Path(args.from_records).glob("*-seed*.json"))
            if not path.name.startswith("warm")
        ]
    else:
        with ProcessPoolExecutor(2) as pool:
            results = [row for rows in pool.map(run, args.seeds, [args.methods] * len(args.seeds),
                                                [args] * len(args.seeds)) for row in rows]  # fmt: skip
    _print(results, args)


def _from_record(path: Path) -> tuple:
    import json

    method, _, seed = path.stem.rpartition("-seed")
    return method, int(seed), float("nan"), json.loads(path.read_text())


def _print(results: list[tuple], args) -> None:
    print("| method | seed | warm start | validation accuracy per epoch | training loss per epoch | budget scale | "
          "seconds |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for method, seed, warm, record in results:
        accuracy = " → ".join(f"{e['validation']['accuracy']:.3f}" for e in record["history"])
        loss = " → ".join(f"{e['train_loss']:.3f}" for e in record["history"])
        scale = " → ".join(f"{e['full_strength_share']:.2f}" for e in record["history"])
        print(f"| {method} | {seed} | {warm:.3f} | {accuracy} | {loss} | {scale} | {record['train_seconds']:.0f} |")
    print("\nConvergence check of the run cut after epoch k (gain of epoch k over k-1, its upper 95 % bound; the loss")
    print(
        "ratio):\n\n| method | seed | k | converged | gain | upper bound | loss ratio |\n|---|---|---|---|---|---|---|"
    )
    for method, seed, _, record in results:
        for cut, check in cuts(record, args).items():
            verdict = "yes" if check["converged"] else f"no: {check['reason']}"
            gain, upper, loss = check["gain_per_epoch"], check["gain_upper"], check["loss_levelling"]
            print(f"| {method} | {seed} | {cut} | {verdict} | {gain:+.3f} | {upper:+.3f} | {'yes' if loss else 'no'} |")


if __name__ == "__main__":
    main()
