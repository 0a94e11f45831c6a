"""Sensitivity of a masked-LM attack to its masked LM (not a test): BAE or BERT-Attack on the same fine-tuned
models and the same seeded sample, once with each masked LM, and the paired difference per model and seed.

The question it answers (issue 22): does the attack's verdict on a pre-training variant change when its masked LM
is a relative of the victims (``clean``: the pre-training run the ``clean`` victims start from) instead of an
unrelated one (``attacker``: other corpus, other seed)? Run on a finished run's results:

    .venv/bin/python benchmarks/masked_lm_sensitivity.py --results results \\
        --masked-lm attacker=results/pretrain/attacker/shared/model \\
        --masked-lm 'clean=results/pretrain/clean/seed{seed}/model' \\
        --models none/base clean/base --seeds 1 2 3 --sample-size 50

A masked LM may be given per seed with ``{seed}`` in its path. Prints one markdown table (accuracy under attack
and attack success per masked LM, per model and seed, and the mean over seeds with its t interval).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch
from scipy import stats

from advlm import artifacts, runtime
from advlm.attacks import running
from advlm.attacks.metrics import summarize
from advlm.attacks.resources import AttackResources


def attack(results: Path, model: str, seed: int, recipe: str, masked_lm: str, params: dict) -> dict:
    """One model attacked with one masked LM: its accuracy under attack and attack success."""
    model_dir = results / "models" / params["dataset"] / model / f"seed{seed}" / "model"
    resources = AttackResources(
        root=results / "resources",
        counterfitted=results / "resources" / "counterfitted",
        sentence_encoder=results / "resources" / "minilm",
        masked_lm=masked_lm.format(seed=seed),
    )
    frame = running.run_shard(
        model_dir,
        artifacts.read_examples(results / "data" / params["dataset"] / "test.jsonl"),
        recipe,
        params,
        shard=0,
        num_shards=1,
        resources=resources,
        device=torch.device("cpu"),
        until_correct=True,
    )
    summary = summarize(frame, params)
    return {key: summary[key] for key in ("accuracy_under_attack", "attack_success_rate")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--masked-lm", action="append", required=True, help="name=directory (two of them)")
    parser.add_argument("--models", nargs="+", default=["none/base", "clean/base"], help="pretrain/method")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--recipe", default="bae", choices=["bae", "bert-attack"])
    parser.add_argument("--dataset", default="rotten_tomatoes")
    parser.add_argument("--sample-size", type=int, default=50)
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "config.yaml")
    args = parser.parse_args()
    masked_lms = dict(item.split("=", 1) for item in args.masked_lm)
    assert len(masked_lms) == 2, "give two masked LMs, name=directory"
    runtime.setup(1, 0)
    runtime.device("cpu", "auto")  # as the workflow's attack jobs: bf16 on a CPU with bf16 units
    import yaml

    settings = yaml.safe_load(args.config.read_text())["attack"]
    params = {key: settings[key] for key in ("batch_size", "query_budget", "seed")}
    params |= {"name": args.recipe, "options": settings["options"][args.recipe], "max_length": 64}
    params |= {"sample_size": args.sample_size, "dataset": args.dataset}

    rows = []
    for model in args.models:
        for seed in args.seeds:
            for name, masked_lm in masked_lms.items():
                row = attack(args.results, model, seed, args.recipe, masked_lm, params)
                rows.append({"model": model, "seed": seed, "masked_lm": name, **row})
                print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    first, second = masked_lms
    wide = table.pivot_table(index=["model", "seed"], columns="masked_lm", values="accuracy_under_attack")
    wide["difference"] = wide[first] - wide[second]
    print(f"\n{args.recipe}, {args.sample_size} attacked examples per model; accuracy under attack\n")
    print(wide.round(3).to_markdown())
    print(f"\nmean difference ({first} − {second}) over seeds, 95 % t interval:\n")
    for model, group in wide.groupby(level="model"):
        d = group["difference"]
        low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d)) if len(d) > 1 else (None, None)
        print(f"- {model}: {d.mean():+.3f} [{low:+.3f}, {high:+.3f}] ({len(d)} seeds)")


if __name__ == "__main__":
    main()
