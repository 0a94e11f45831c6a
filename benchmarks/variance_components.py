"""Each claim's primary endpoint's variance components, measured in a finished run, in the form of
resources/variance_components.yaml (advlm/power.py plans the next run's power with them): sd, the standard deviation
over seeds of the per-seed paired difference; shared, the examples' variance every seed shares
(advlm.stats.effect_variance); examples, the paired examples per seed (the fewest over seeds); sample_size, the
run's attack.sample_size.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/variance_components.py results \\
        --configfile config.yaml experiments/decide_cpu.yaml --source "decide_cpu at <commit>, <machine>, <date>"

The config files are the run's, merged in order as Snakemake merges them; the claims and the word cap come from
them (with the schema's defaults). Claims whose models the run did not train are left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow_scripts"))

from advlm import artifacts, claims, stats  # noqa: E402


def load_config(paths: list[str]) -> dict:
    """The run's config: the files merged in order, then the schema's defaults (as the Snakefile validates)."""
    from snakemake.utils import update_config, validate

    config: dict = {}
    for path in paths:
        update_config(config, yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    validate(config, str(ROOT / "schemas" / "config.schema.yaml"))
    return config


def components(results: Path, config: dict, source: str) -> dict:
    experiment = {"datasets": config["datasets"], "ood": config["ood"], "attacks": config["attack"]["recipes"]}
    attacks = [
        path for path in sorted((results / "attacks").glob("*/*/*/seed*/*.csv")) if path.stem in experiment["attacks"]
    ]
    outcomes = claims.load_outcomes(
        predictions=sorted((results / "eval").glob("*/*/*/seed*/*.predictions.csv")),
        attacks=attacks,
        probes=sorted((results / "neurons").glob("*/*/*/seed*/probe.json")),
        word_cap=config["claims"]["word_cap"],
    )
    out = {}
    dataset = experiment["datasets"][0]
    for claim, spec in config["claims"]["statements"].items():
        index, metric_name, key = claims.primary_endpoint(spec, experiment, dataset)
        contrast = spec["contrasts"][index]
        treatment, control = ([claims.parse_cell(c) for c in contrast[side]] for side in ("treatment", "control"))
        cell_seeds = [outcomes.seeds(dataset, cell) for cell in (*treatment, *control)]
        seeds = sorted(set.intersection(*cell_seeds)) if all(cell_seeds) else []
        metric = claims._metric(metric_name)
        differences, _ = claims._differences(outcomes, dataset, treatment, control, seeds, metric, key, experiment)
        if len(differences) < 2:
            continue  # not trained here, or one seed: no spread to measure
        values = [d.value for d in differences]
        examples = [d.n_examples for d in differences if d.n_examples is not None]
        sample_size = None
        if spec["family"] == "robustness":
            record = next((results / "attacks").glob(f"{dataset}/*/*/seed*/{key}.json"))
            sample_size = int(artifacts.read_json(record)["sample_size"])
        out[claim] = {
            "metric": metric_name,
            "key": key,
            "sd": round(float(np.std(values, ddof=1)), 5),
            "examples": min(examples) if examples else None,
            "sample_size": sample_size,
            "shared": float(f"{stats.effect_variance(differences).examples:.3g}"),
            "source": f"{source}; {len(values)} seeds",
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--configfile", nargs="+", default=[str(ROOT / "config.yaml")])
    parser.add_argument("--source", required=True, help="the run: experiment, commit, machine, date")
    args = parser.parse_args()
    found = components(args.results, load_config(args.configfile), args.source)
    print(yaml.safe_dump({"claims": found}, sort_keys=False, allow_unicode=True, width=120))


if __name__ == "__main__":
    main()
