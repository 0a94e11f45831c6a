"""Rule attack: attack one shard of the test sample of one fine-tuned model.

Writes the per-example CSV and, beside it (``sharding.shard_record_path``: same name, ``.json``), what the
gather step records: the attack's full ``repr``, its parameters, the checksums of the resources it used,
the shard and this job's provenance.
"""

import importlib.metadata
from pathlib import Path

from advlm import artifacts, runtime
from advlm.attacks import running, sharding
from advlm.attacks.resources import AttackResources


def main(smk):
    params = dict(smk.params.attack)
    shard, num_shards = int(smk.params.shard), int(smk.params.num_shards)
    runtime.setup(smk.threads, params["seed"])
    test = artifacts.read_examples(smk.input.test)
    # The resources this attack needs (advlm.plan.attacks: attack_inputs); a Hub masked LM comes from params.
    resources = AttackResources(
        root=Path(smk.input.nltk_data).parent,
        counterfitted=getattr(smk.input, "counterfitted", None),
        sentence_encoder=getattr(smk.input, "sentence_encoder", None),
        masked_lm=getattr(smk.input, "masked_lm", None) or params.get("masked_lm"),
    )
    frame = running.run_shard(
        model_dir=smk.input.model,  # the finetune rule's save_pretrained directory
        test_frame=test,
        attack_name=smk.wildcards.attack,
        params=params,
        shard=shard,
        num_shards=num_shards,
        resources=resources,
        device=runtime.device(smk.params.device, smk.params.precision),
        until_correct=True,  # sharding.correct_prefix: each model attacks sample_size examples it gets right
    )
    Path(smk.output.csv).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(smk.output.csv, index=False)
    artifacts.write_json(
        {
            "attack": smk.wildcards.attack,
            "attack_repr": frame.attrs["attack_repr"],
            "resources": frame.attrs["resources"],
            "params": params,
            "shard": shard,
            "num_shards": num_shards,
            "sample_size": frame.attrs["sample_size"],
            "textattack_version": importlib.metadata.version("textattack"),
            "provenance": runtime.provenance(params["seed"], params),
        },
        sharding.shard_record_path(smk.output.csv),
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
