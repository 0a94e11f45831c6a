"""Nothing goes stale: an edited local data file or library module reruns exactly what read it, and what depends
on that (a job's input is its script's library stamp: advlm.plan.imports, tests/test_plan_imports.py). On a copy of
the workflow (so that its library can be edited) whose outputs are stand-in files marked up to date (--touch): each
check is a dry run."""

import os
import shutil
import subprocess
import sys
import time

import pytest
from smk import ENV, TINY_CONFIG, copy_workflow, job_counts, write_overlay


@pytest.fixture(scope="module")
def touched(tmp_path_factory, tiny_bert):
    """(snakemake command, workdir, copy of the repository) with every output present and up to date."""
    root = tmp_path_factory.mktemp("staleness")
    repo, workdir = root / "repo", root / "work"
    repo.mkdir()
    copy_workflow(repo)
    source = root / "imdb.csv"  # imdb (an out-of-domain set of the tiny config) from a local file
    source.write_text("text,label\n" + "".join(f"review {i},{i % 2}\n" for i in range(40)))
    overlay = write_overlay(
        workdir,
        model={"name": str(tiny_bert), "max_length": 32},
        data={"sources": {"imdb": {"kind": "file", "path": str(source)}}},
    )
    snakemake = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repo / "Snakefile"),
        "--directory",
        str(workdir),
        "--workflow-profile",
        "none",
        "--cores",
        "2",
        "--configfile",
        str(TINY_CONFIG),
        str(overlay),
    ]

    def run(*args):
        result = subprocess.run([*snakemake, *args], cwd=workdir, env=ENV, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    summary = run("--summary").splitlines()[1:]
    for output in (workdir / line.split("\t")[0] for line in summary):
        directory = output.name == "model" or output.parent.name == "resources" or "results/eval/" in str(output)
        if directory:  # the directory outputs: models, resources, a model's evaluations
            output.mkdir(parents=True, exist_ok=True)
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.touch()
    run("--touch")
    assert "Nothing to be done" in run("-n")
    return run, repo, source


def _edit(path):
    """Change a file's content; its time stamp moves past every output's."""
    path.write_text(path.read_text() + "\n# edited\n")
    later = time.time() + 2
    os.utime(path, (later, later))


def _wait_until_past(path):
    """Until the clock has passed ``path``'s time stamp: outputs touched before then would be older than it (on a
    fast machine the dry run ends within the 2 s)."""
    time.sleep(max(0.0, path.stat().st_mtime - time.time() + 0.1))


# what a change to the training reruns: every model (warm starts and fine-tuned) and everything after it
EVERY_MODEL = {
    "warm_start": 6,
    "finetune": 10,
    "attack_train": 2,
    "evaluate": 10,
    "attack": 20,
    "gather_attack": 10,
    "extract_activations": 10,
    "probe_neurons": 10,
    "aggregate": 1,
    "all": 1,
}


@pytest.mark.parametrize(
    "edited, reruns",
    [
        # imported by the scripts of tag_probe_corpus and extract_activations (10 models and the start model's
        # reference); what follows them reruns too: the probes and the report
        (
            "workflow_scripts/advlm/neurons/tagging.py",
            {"tag_probe_corpus": 1, "extract_activations": 11, "probe_neurons": 11, "aggregate": 1, "all": 1},
        ),
        # imported only through advlm.neurons.analysis, by the probe_neurons script: the corpus and the activations stay
        ("workflow_scripts/advlm/neurons/probe.py", {"probe_neurons": 11, "aggregate": 1, "all": 1}),
        # imported only through advlm.report, advlm.claims and advlm.claims_summary, by the aggregate script
        ("workflow_scripts/advlm/neurons/report.py", {"aggregate": 1, "all": 1}),
        # imported only through advlm.training.loop, by the warm_start and finetune scripts (and by evaluate's directly)
        ("workflow_scripts/advlm/evaluation.py", EVERY_MODEL),
        # imported only through advlm.training's __init__, by the warm_start and finetune scripts
        ("workflow_scripts/advlm/training/embedding_space.py", EVERY_MODEL),
        # the local data source of imdb: its splits, the evaluations on it, the probes' causal test (each fine-tuned
        # model's classifier is ablated on it) and the report
        ("imdb.csv", {"prepare_dataset": 1, "evaluate": 10, "probe_neurons": 10, "aggregate": 1, "all": 1}),
    ],
)
def test_an_edited_file_reruns_exactly_what_reads_it(touched, edited, reruns):
    run, repo, source = touched
    path = source if edited == "imdb.csv" else repo / edited
    _edit(path)
    try:
        assert job_counts(run("-n")) == reruns
    finally:
        _wait_until_past(path)
        run("--touch")  # up to date again for the next case


def test_a_module_touched_but_not_changed_reruns_nothing(touched):
    """The stamps follow the modules' content: a new time stamp alone (an unchanged file saved again, a branch
    switched to and back) reruns nothing, and stamps written afresh (.snakemake removed) are as old as the code, so
    they rerun nothing either."""
    run, repo, _ = touched
    path = repo / "workflow_scripts" / "advlm" / "training" / "loop.py"
    later = time.time() + 2
    os.utime(path, (later, later))
    try:
        assert "Nothing to be done" in run("-n")
        _wait_until_past(path)
        run("--touch")  # the outputs newer than the module again
        stamps = repo.parent / "work" / ".snakemake" / "library"
        shutil.rmtree(stamps)
        assert "Nothing to be done" in run("-n")
        assert (stamps / "finetune.sha256").exists()
    finally:
        _wait_until_past(path)
        run("--touch")
