"""Do bf16 model passes move the results? fp32 against bf16 autocast for trained classifiers (not a test).

For each model directory: accuracy on an evaluation set in fp32 and in bf16 autocast, the predictions that
flip, the largest change of a class probability, and the time of each pass (bf16 pays only on CPUs with bf16
units, AMX; elsewhere oneDNN emulates it, far slower). Compare the accuracy change with the seed-to-seed spread
of the same models (the report's training table): within it, bf16 does not move the results.

With ``--attacks``, each model is also attacked in fp32 and in bf16 (the victim's passes; the sentence encoder
stays in fp32, the precision its thresholds were calibrated in) on the same examples, the first
``--attack-examples`` of the attack order, at the workflow's attack settings (config.yaml): accuracy under
attack in each precision and the examples whose outcome (success, failure, skipped) differs.

    .venv/bin/python benchmarks/precision_check.py results/models/rotten_tomatoes/*/*/seed1/model
    .venv/bin/python benchmarks/precision_check.py MODEL... --examples results/data/rotten_tomatoes/test.jsonl
    .venv/bin/python benchmarks/precision_check.py MODEL --attacks pwws,deepwordbug,a2t --attack-examples 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "bf16")


def attack_both(model, tokenizer, device, examples, recipes, args) -> list[dict]:
    """Each recipe in each precision on the same examples: one row per recipe (accuracy under attack in each,
    the examples whose outcome differs, seconds)."""
    import yaml

    from advlm import runtime
    from advlm.attacks import running, sharding
    from advlm.attacks.resources import AttackResources

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    settings = config["attack"]
    params = {key: settings[key] for key in ("query_budget", "batch_size", "seed")}
    params |= {"sample_size": args.attack_examples, "options": {}}
    resources = AttackResources.coerce(args.resources)
    wrapper = running.make_wrapper(model, tokenizer, args.max_length, params["batch_size"], resources.root)
    from advlm.attacks import recipes as builds  # imports textattack: after make_wrapper's offline set-up

    sample = sharding.attack_sample(examples, args.attack_examples, params["seed"])
    rows = []
    for name in recipes:
        params["options"] = dict((settings.get("options") or {}).get(name, {}))
        outcomes, seconds = {}, {}
        for precision in PRECISIONS:
            runtime.set_precision(precision, device)
            attack = builds.build_attack(name, wrapper, params, resources)
            began = time.perf_counter()
            frame = running.attack_examples(attack, sample, range(len(sample)), params["seed"])
            seconds[precision] = time.perf_counter() - began
            outcomes[precision] = frame["outcome"].to_numpy()
        under_attack = {p: float((outcomes[p] == "failure").mean()) for p in PRECISIONS}
        rows.append(
            {
                "attack": name,
                "n": len(sample),
                **{f"accuracy_under_attack_{p}": under_attack[p] for p in PRECISIONS},
                "outcomes_differing": int((outcomes["fp32"] != outcomes["bf16"]).sum()),
                **{f"seconds_{p}": seconds[p] for p in PRECISIONS},
            }
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--examples", default="results/data/rotten_tomatoes/test.jsonl")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--attacks", default="", help="comma-separated recipes to attack each model with")
    parser.add_argument("--attack-examples", type=int, default=100)
    parser.add_argument("--resources", default="results/resources", help="the workflow's offline resources")
    args = parser.parse_args(argv)

    from advlm import artifacts, models, runtime

    runtime.setup(args.threads, 0)
    device = runtime.device(args.device)
    examples = artifacts.read_examples(args.examples)
    texts, labels = examples["text"].tolist(), examples["label"].to_numpy()
    print(f"{len(texts)} examples of {args.examples}; device {device}, {args.threads} thread(s)")
    print("| model | accuracy fp32 | bf16 | change | predictions flipped | max prob change | s fp32 | s bf16 |")
    print("|---|---|---|---|---|---|---|---|")
    attacked = {}
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
        attacked[model_dir] = (model, tokenizer)
    if not args.attacks:
        return
    print(
        "\n| model | attack | examples | accuracy under attack fp32 | bf16 | change | outcomes differing "
        "| s fp32 | s bf16 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model_dir, (model, tokenizer) in attacked.items():
        for row in attack_both(model, tokenizer, device, examples, args.attacks.split(","), args):
            fp32, bf16 = row["accuracy_under_attack_fp32"], row["accuracy_under_attack_bf16"]
            print(
                f"| {model_dir} | {row['attack']} | {row['n']} | {fp32:.3f} | {bf16:.3f} | {bf16 - fp32:+.3f} "
                f"| {row['outcomes_differing']} | {row['seconds_fp32']:.0f} | {row['seconds_bf16']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
