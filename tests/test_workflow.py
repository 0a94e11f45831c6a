"""The workflow as Snakemake sees it: the dry-run job lists, config checks stopping a run before any job, a job's
entry in the log, lint. The planning behind it is unit-tested without Snakemake in tests/test_plan_*.py."""

import re
import subprocess
import sys
import types

import pytest
from smk import ROOT, config_with, copy_workflow, job_counts, run, write_overlay

TINY_JOBS = {  # tests/config/tiny.yaml: (base on 3 pre-training variants + advaug, a2t on none) × 2 seeds = 10 models
    "prepare_resources": 4,
    "prepare_dataset": 2,
    "prepare_ood": 1,
    "augment_corpus": 1,
    "pretrain_mlm": 4,  # clean and augmented, one run per seed (pretrain.replicate per_seed)
    "build_embeddings": 1,
    "warm_start": 6,  # one per pre-training variant and seed, shared by the seed's methods
    "finetune": 10,
    "attack_train": 2,
    "evaluate": 10,  # one job per model for its 3 evaluation sets
    "attack": 20,
    "gather_attack": 10,
    # the neuron probes: the 10 models and the start model without fine-tuning (the reference)
    "tag_probe_corpus": 1,
    "extract_activations": 11,
    "probe_neurons": 11,
    "aggregate": 1,
    "all": 1,
}


def _common():
    """rules/common.smk as a module: the getters the rules call (other stages' tests look planning helpers up here)."""
    namespace = {"workflow": types.SimpleNamespace(basedir=str(ROOT))}
    exec(compile((ROOT / "rules" / "common.smk").read_text(), "common.smk", "exec"), namespace)
    return types.SimpleNamespace(**namespace)


_config = config_with  # tests/test_catalog.py imports it from here


def test_dry_run_job_list_for_the_tiny_config(tmp_path, tiny_bert):
    overlay = write_overlay(tmp_path, model={"name": str(tiny_bert), "max_length": 32})
    log = run(tmp_path, "-n", configfiles=[overlay]).stdout
    assert job_counts(log) == TINY_JOBS
    # a job's entry names its script's library stamp, not the library modules (advlm.plan.imports)
    entries = re.findall(r"^(?:local)?rule (\w+):\n    input: (.*)$", log, re.MULTILINE)
    assert len(entries) == sum(TINY_JOBS.values())
    for rule, inputs in [(rule, inputs) for rule, inputs in entries if rule != "all"]:  # all: no script
        stamps = [path for path in inputs.split(", ") if path.startswith(".snakemake/library/")]
        script = {"warm_start": "finetune"}.get(rule, rule)
        assert stamps == [f".snakemake/library/{script}.sha256"], rule
        assert "workflow_scripts/advlm" not in inputs, rule
    assert (tmp_path / ".snakemake" / "library" / "finetune.sha256").read_text().count("advlm/training/") > 5


def test_dry_run_grows_with_seeds_and_attacks(tmp_path, tiny_bert):
    overlay = write_overlay(
        tmp_path,
        model={"name": str(tiny_bert), "max_length": 32},
        finetune={"seeds": [1, 2, 3]},
        attack={"recipes": ["deepwordbug", "pwws"], "shards": 3},
    )
    counts = job_counts(run(tmp_path, "-n", configfiles=[overlay]).stdout)
    assert counts["finetune"] == 15 and counts["evaluate"] == 15  # (3 base + 2 on none) × 3 seeds
    assert counts["warm_start"] == 3 * 3  # planned once per variant and seed, whatever the methods
    assert counts["pretrain_mlm"] == 2 * 3  # clean and augmented, once per seed
    assert counts["attack"] == 15 * 2 * 3 and counts["gather_attack"] == 30 and counts["attack_train"] == 3


def test_a_config_file_that_is_not_yaml_is_reported_with_its_line(tmp_path):
    copy_workflow(tmp_path)
    (tmp_path / "config.yaml").write_text("device: auto\nmodel:\n  name: minilm\n   max_length: 64\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--workflow-profile", "none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "config.yaml, line 4, column 14: not valid YAML" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "overlay, message",
    [
        ({"finetune": {"epochs": "two"}}, "'two' is not of type 'integer'"),
        ({"finetune": {"epocs": 2}}, "'epocs' was unexpected"),
        ({"attack": {"recipes": ["hotflip"]}}, "'hotflip' is not one of"),
        ({"data": {"sources": {"mine": {"kind": "file", "path": "/nowhere.csv"}}}}, "data.sources.mine.path"),
        ({"finetune": {"epochs": 2.0}}, "finetune.epochs: 2.0 is a float where a whole number is expected"),
        ({"attack": {"shards": 7}}, "attack.shards: 7 shards for a sample of at most 6 test examples"),
        ({"downloads_dir": "/nowhere"}, "Missing input files for rule prepare_resources"),  # the pinned archives
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, tiny_bert, overlay, message):
    overlay = {"model": {"name": str(tiny_bert), "max_length": 32}, **overlay}
    result = run(tmp_path, "-n", configfiles=[write_overlay(tmp_path, **overlay)], check=False)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_lint_is_clean():
    """`make lint` (Snakemake's linter, snakefmt, ruff's linter and formatter), its set-up taken as done."""
    result = subprocess.run(
        ["make", "-o", ".venv/.installed", "-o", ".venv/.dev-installed", "-o", "downloads/.fetched", "lint"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_slurm_profile_dry_runs(tmp_path, tiny_bert):
    overlay = write_overlay(tmp_path, model={"name": str(tiny_bert), "max_length": 32})
    result = run(tmp_path, "-n", "--workflow-profile", str(ROOT / "profiles" / "slurm"), configfiles=[overlay])
    assert job_counts(result.stdout)["finetune"] == 10
