"""Rule attack_train: advaug's adversarial examples, from attacking the training set once, in a seeded order, with
the trained base model until ``share`` of it has a successful adversarial example, as a2t does every epoch (per-example
CSV as the attack rule writes, plus a JSON record)."""

import importlib.metadata
from pathlib import Path

from advlm import artifacts, runtime
from advlm.attacks import metrics, running
from advlm.attacks.resources import AttackResources


def main(smk):
    advaug, seed = smk.params.advaug, int(smk.params.seed)
    runtime.setup(smk.threads, seed)
    train = artifacts.read_examples(smk.input.train)
    # the recipe's evaluation sample size does not apply: the training set is attacked until `successes`
    params = {k: v for k, v in smk.params.attack.items() if k != "sample_size"} | {
        "query_budget": advaug["query_budget"],
        "seed": seed,
    }
    successes = round(advaug["share"] * len(train))
    resources = AttackResources(
        root=Path(smk.input.nltk_data).parent,
        counterfitted=getattr(smk.input, "counterfitted", None),
        sentence_encoder=getattr(smk.input, "sentence_encoder", None),
        masked_lm=getattr(smk.input, "masked_lm", None) or params.get("masked_lm"),
    )
    frame = running.run_shard(
        model_dir=smk.input.model,
        test_frame=train,
        attack_name=advaug["attack"],
        params=params,
        shard=0,
        num_shards=1,
        resources=resources,
        device=runtime.device(smk.params.device, smk.params.precision),
        successes=successes,
    )
    frame.to_csv(smk.output.csv, index=False)
    artifacts.write_json(
        {
            "attack": advaug["attack"],
            "attack_repr": frame.attrs["attack_repr"],
            "resources": frame.attrs["resources"],
            "advaug": advaug,
            "params": params,
            "successes_sought": successes,
            "summary": metrics.summarize(frame, params),
            "textattack_version": importlib.metadata.version("textattack"),
            "provenance": runtime.provenance(seed, params),
        },
        smk.output.record,
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
