"""Rule gather_attack: join the shards of one model's attack and summarize it."""

import pandas as pd

from advlm import artifacts, runtime
from advlm.attacks import budget, metrics, sharding

# What every shard of one attack must share; a mismatch means a stale shard from an earlier configuration.
SHARED_KEYS = ("attack", "attack_repr", "params", "resources", "num_shards", "sample_size", "textattack_version")


def main(smk):
    runtime.setup(smk.threads, None, uses_torch=False)
    shards = list(smk.input.shards)
    records = [artifacts.read_json(sharding.shard_record_path(path)) for path in shards]
    first = records[0]
    for path, record in zip(shards, records):
        for key in SHARED_KEYS:
            if record.get(key) != first.get(key):
                raise ValueError(f"{path}: {key} differs from {shards[0]}; rerun the stale shards")
    if sorted(record["shard"] for record in records) != list(range(first["num_shards"])):
        raise ValueError(f"expected shards 0..{first['num_shards'] - 1}, got {[r['shard'] for r in records]}")
    # keep_default_na=False: an empty or "NA" text stays a string
    frames = [
        pd.read_csv(path, dtype={"id": str, "original_text": str, "perturbed_text": str}, keep_default_na=False)
        for path in shards
    ]
    frame = sharding.gather(frames, first["sample_size"])
    frame.to_csv(smk.output.csv, index=False)
    artifacts.write_json(
        {
            **metrics.summarize(frame, first["params"]),
            **budget.summarize(frame),  # at the sourced word caps, exactly from the same rows
            **{key: first.get(key) for key in SHARED_KEYS},
            "provenance": runtime.provenance(first["params"]["seed"], first["params"]),
            "shard_provenance": [record["provenance"] for record in records],
        },
        smk.output.summary,
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
