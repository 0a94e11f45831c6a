"""The workflow on a real one-node SLURM cluster, through the unmodified profiles/slurm.

tests/slurm/start-slurm.sh installs Debian's SLURM (slurm-wlm 22.05 with slurmdbd and MariaDB) when it is
missing and starts a cluster laid out as the profile expects it: partitions cpu and gpu, one node with 8 CPUs
and 4 GPUs (device files that are /dev/null: SLURM allocates them, nothing computes on them). Every claim is
checked against SLURM's own accounting (sacct); faults are real ones: a job killed on the node, an scancel, a
node set down, the Snakemake head killed. Needs root and apt-get (or the packages installed); skipped with the
reason where the machine has neither.

Time (2026-12-01, 2-core VM, packages already installed): 18 min 48 s for the module while other work kept the
load average at 7-11; its jobs take 12-26 CPU seconds each, so an idle 2-core machine needs about half of that.
Cluster start 30 s (+ about 25 s to install the packages), the slice on SLURM (14 jobs) 5 min 40 s, the same
slice locally about 5 min, each fault run 1.5-2 min, cluster stop 12 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from smk import ROOT, SNAKEMAKE, TINY_CONFIG, job_counts, run, write_overlay

SCRIPTS = ROOT / "tests" / "slurm"
PROFILE = ROOT / "profiles" / "slurm"
# a slice of the tiny DAG, small because every SLURM job starts Snakemake twice (the job and its job step):
# one model (base, no continued pre-training, seed 1), evaluated in domain and on tweets, attacked in two
# shards; GPU rules among its jobs: finetune, attack, extract_activations
SLICE = {
    "pretrain": {"variants": ["none"]},
    "finetune": {"methods": ["base"], "seeds": [1]},
    "ood": {"rotten_tomatoes": ["tweets"]},
}
# gpu=1 in the rules
GPU_RULES = {"warm_start", "finetune", "pretrain_mlm", "attack", "attack_train", "extract_activations"}
LOCAL_RULES = {"aggregate", "all"}  # localrule: True (and the target rule)
# threads (others: 1)
THREADS = {"warm_start": 4, "finetune": 4, "pretrain_mlm": 4, "extract_activations": 2, "build_embeddings": 2}
# Snakemake never gives a job more threads than its machine has cores (`--cores all` inside a cluster job):
# the test node advertises 8 CPUs, but a cluster job here runs with at most this machine's cores
CORES = len(os.sched_getaffinity(0))
HANG = 900  # seconds: a run of the slice that takes longer than this is taken to hang
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
BASE = "results/models/rotten_tomatoes/none/base/seed1"
HEADS = []  # background snakemake runs: any still running when the module ends is killed before the cluster stops


def cannot_run_slurm() -> str | None:
    """Why this machine cannot start the test cluster, or None."""
    if not sys.platform.startswith("linux"):
        return "the test cluster needs Linux"
    if os.geteuid() != 0:
        return "needs root: tests/slurm/start-slurm.sh installs Debian's slurm-wlm and starts SLURM's daemons"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install it (Debian 12 packages expected)"
    recorded = Path("/run/slurm-local/pids").read_text() if Path("/run/slurm-local/pids").exists() else ""
    for pidfile, name in (("/run/slurmctld.pid", "slurmctld"), ("/run/slurmd.pid", "slurmd")):
        try:
            pid = Path(pidfile).read_text().strip()
            running = Path(f"/proc/{pid}/comm").read_text().strip() == name
        except (OSError, ValueError):
            continue
        if running and f"{name} {pid}" not in recorded:
            return f"a {name} that these tests did not start is running (pid {pid}); they need their own cluster"
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = cannot_run_slurm()
    if reason:
        pytest.skip(reason)
    stop = [str(SCRIPTS / "stop-slurm.sh"), "--purge-state"]
    subprocess.run(stop, capture_output=True)  # daemons a crashed earlier session left (only recorded PIDs)
    started = subprocess.run([str(SCRIPTS / "start-slurm.sh")], capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        subprocess.run(stop, capture_output=True)
        pytest.fail(f"start-slurm.sh failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
    yield SimpleNamespace(node=subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip())
    for head in HEADS:
        if head.poll() is None:  # a test failed while its run was out
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
    stopped = subprocess.run(stop, capture_output=True, text=True)  # cancels their jobs too
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def command(workdir: Path, configfiles, *args, profile=PROFILE) -> list[str]:
    """snakemake with profiles/slurm as a user runs it; the first status check after 2 s, not 20 s."""
    return [
        *SNAKEMAKE,
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(profile),
        "--configfile",
        str(TINY_CONFIG),
        *map(str, configfiles),
        "--slurm-init-seconds-before-status-checks",
        "2",
        *args,
    ]


def start(workdir: Path, configfiles, *args, log="run.log", profile=PROFILE) -> SimpleNamespace:
    """A run in the background, its output in workdir/log."""
    path = workdir / log
    with open(path, "w") as out:
        process = subprocess.Popen(
            command(workdir, configfiles, *args, profile=profile),
            cwd=workdir,
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    HEADS.append(process)
    return SimpleNamespace(process=process, log=path, started=time.time())


def finish(head: SimpleNamespace, timeout=HANG) -> str:
    """Wait for a background run; one that outlives the timeout is killed and fails the test as hung."""
    try:
        head.process.wait(timeout=timeout - (time.time() - head.started))
    except subprocess.TimeoutExpired:
        os.killpg(head.process.pid, signal.SIGKILL)  # Snakemake ignores SIGTERM while jobs are out
        head.process.wait()
        pytest.fail(f"snakemake hung (killed after {timeout} s):\n{head.log.read_text()[-4000:]}")
    return head.log.read_text()


def slurm_run(workdir: Path, configfiles, *args, log="run.log", profile=PROFILE) -> str:
    output = finish(start(workdir, configfiles, *args, log=log, profile=profile))
    assert "steps (100%) done" in output, output[-6000:]
    return output


def run_id(output: str) -> str:
    return re.search(r"^SLURM run ID: (\S+)", output, re.MULTILINE).group(1)


def sacct(run: str, *, duplicates=False) -> list[dict]:
    """The SLURM jobs of a run (the plugin names every job after the run ID), one dict per job; with duplicates
    also the earlier runs of requeued jobs. rule: from the plugin's --comment rule_<rule>_wildcards_<values>."""
    fields = ["JobIDRaw", "State", "Comment", "Partition", "AllocCPUS", "AllocTRES", "Submit", "Start", "End"]
    output = subprocess.run(
        [
            "sacct",
            "-X",
            "-n",
            "-P",
            "--starttime",
            "now-2days",
            "--name",
            run,
            "-o",
            ",".join(fields),
            *(["-D"] if duplicates else []),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = [dict(zip(fields, line.split("|"))) for line in output.splitlines() if line]
    for job in jobs:
        job["rule"] = job["Comment"].removeprefix("rule_").split("_wildcards_")[0]
    return jobs


def squeue(run: str) -> list[dict]:
    output = subprocess.run(
        ["squeue", "-h", "--name", run, "-o", "%i|%T|%k"], capture_output=True, text=True, check=True
    ).stdout
    return [dict(zip(("id", "state", "comment"), line.split("|"))) for line in output.splitlines() if line]


def wait_for_job(log: Path, rule: str, timeout=600, state="RUNNING", exclude=None) -> dict:
    """The first job of `rule` (but `exclude`) that SLURM shows in `state`, once the run in `log` has one."""
    end = time.time() + timeout
    while time.time() < end:
        text = log.read_text()
        if "SLURM run ID: " in text:
            for job in squeue(run_id(text)):
                if (
                    job["state"] == state
                    and job["id"] != exclude
                    and job["comment"].removeprefix("rule_").startswith(f"{rule}_wildcards_")
                ):
                    return job
        time.sleep(0.5)
    pytest.fail(f"no {rule} job was {state} within {timeout} s:\n{log.read_text()[-3000:]}")


def comparable(workdir: Path) -> dict[str, object]:
    """Every result file but logs, benchmarks and caches; JSON and CSV parsed, their timings dropped."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "seconds" not in k}
        return [strip(v) for v in value] if isinstance(value, list) else value

    files = {}
    for path in sorted((workdir / "results").rglob("*")):
        relative = str(path.relative_to(workdir))
        if path.is_dir() or relative.startswith(
            ("results/logs/", "results/benchmarks/", "results/resources/textattack_cache/")
        ):
            continue
        if path.suffix == ".json":
            files[relative] = strip(json.loads(path.read_text()))
        elif path.suffix == ".csv":
            table = pd.read_csv(path, keep_default_na=False)
            files[relative] = table.drop(columns=[c for c in table if "seconds" in c]).to_dict("list")
        elif path.suffix == ".md":  # the report's Markdown tables: cells of the columns named *seconds* left out
            files[relative] = [drop_seconds(table) for table in re.split(r"\n(?=## )", path.read_text())]
        else:
            files[relative] = path.read_bytes()
    return files


def drop_seconds(markdown: str) -> list[list[str]]:
    """A section's prose and tables (a section may hold several, with different columns), each table's columns
    named *seconds* left out."""
    kept = []
    for block in re.split(r"\n(?!\|)|(?<!\|)\n", markdown):  # table lines stay together, prose splits off
        lines = block.splitlines()
        if not lines or not lines[0].startswith("|"):
            kept.append([block])
            continue
        rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
        keep = [i for i, name in enumerate(rows[0]) if "seconds" not in name]
        kept.extend([row[i] for i in keep] for row in rows)
    return kept


def assert_same_results(workdir: Path, expected: dict[str, object]):
    actual = comparable(workdir)
    assert sorted(actual) == sorted(expected)
    different = [path for path in expected if actual[path] != expected[path]]
    assert not different, f"differ from the local run: {different}"


# --- the fixtures: the slice on SLURM and locally -----------------------------------------------------


@pytest.fixture(scope="module")
def overlay_parts(tmp_path_factory):
    from tiny_model import build_tiny_bert

    tiny = build_tiny_bert(tmp_path_factory.mktemp("slurm_tiny_bert"))
    return {"model": {"name": str(tiny), "max_length": 32}, **SLICE}


@pytest.fixture(scope="module")
def local_dag(tmp_path_factory, overlay_parts):
    """The same slice run locally (tests/smk.py: profiles/default), each job with the threads it has in a
    cluster job here: results depend on the thread count (float sums in another order), not on SLURM."""
    workdir = tmp_path_factory.mktemp("slurm_local")
    overlay = write_overlay(workdir, **overlay_parts)
    planned = job_counts(run(workdir, "-n", configfiles=[overlay]).stdout)
    threads = {rule: min(n, CORES) for rule, n in THREADS.items()}
    run(
        workdir,
        "--cores",
        str(max(threads.values())),
        "--max-threads",
        str(max(threads.values())),
        "--set-threads",
        *(f"{rule}={n}" for rule, n in threads.items()),
        configfiles=[overlay],
    )
    return SimpleNamespace(workdir=workdir, planned=planned, results=comparable(workdir))


@pytest.fixture(scope="module")
def slurm_dag(cluster, tmp_path_factory, overlay_parts):
    workdir = tmp_path_factory.mktemp("slurm_run")
    overlay = write_overlay(workdir, **overlay_parts)
    started = time.time()
    output = slurm_run(workdir, [overlay])
    return SimpleNamespace(
        workdir=workdir,
        overlay=overlay,
        output=output,
        run=run_id(output),
        jobs=sacct(run_id(output)),
        seconds=time.time() - started,
    )


# --- the tiny DAG through profiles/slurm ----------------------------------------------------------------


def test_every_cluster_job_ran_and_completed_in_slurm(slurm_dag, local_dag):
    expected = {rule: n for rule, n in local_dag.planned.items() if rule not in LOCAL_RULES}
    ran = {}
    for job in slurm_dag.jobs:
        assert job["State"] == "COMPLETED", job
        ran[job["rule"]] = ran.get(job["rule"], 0) + 1
    assert ran == expected
    print(f"{len(slurm_dag.jobs)} SLURM jobs in {slurm_dag.seconds:.0f} s")


def test_gpu_rules_got_a_gpu_and_every_job_the_cpus_it_uses(slurm_dag):
    for job in slurm_dag.jobs:
        gpus = re.findall(r"gres/gpu=(\d+)", job["AllocTRES"])
        if job["rule"] in GPU_RULES:
            assert gpus == ["1"] and job["Partition"] == "gpu", job
        else:
            assert gpus == [] and job["Partition"] == "cpu", job
        assert int(job["AllocCPUS"]) == THREADS.get(job["rule"], 1), job  # attacks: 1 CPU, 1 thread


def test_attack_shards_ran_as_separate_jobs(slurm_dag):
    shards = [job["Comment"] for job in slurm_dag.jobs if job["rule"] == "attack"]
    assert len(shards) == len(set(shards)) == 2  # 1 model × 2 shards
    assert {comment[-2:] for comment in shards} == {"_0", "_1"}


def test_a_cluster_job_uses_the_threads_it_asked_for(slurm_dag):
    # finetune asks SLURM for 4 CPUs. Inside the job Snakemake reads the Snakefile again with `--cores all`, the
    # CPUs the job may use, and threads_up_to used to halve them there (2 threads in a 4-CPU job). Here: 4
    # threads where the machine has 4 cores, 2 on a 2-core CI machine (1 before the fix).
    record = json.loads((slurm_dag.workdir / f"{BASE}/train_log.json").read_text())
    assert record["provenance"]["torch_threads"] == min(THREADS["finetune"], CORES)


def test_results_equal_a_local_run(slurm_dag, local_dag):
    assert_same_results(slurm_dag.workdir, local_dag.results)


def test_a_second_run_has_nothing_to_do(slurm_dag):
    result = subprocess.run(
        command(slurm_dag.workdir, [slurm_dag.overlay], "-n"),
        cwd=slurm_dag.workdir,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout + result.stderr


# --- faults -------------------------------------------------------------------------------------------
# Each runs in a copy of the finished run less a few outputs, so that only their jobs run again.

EVAL = "results/eval/rotten_tomatoes/none/base/seed1"
SHARD = "results/attacks/rotten_tomatoes/none/base/seed1/deepwordbug"
FAULT_HANG = 420  # seconds: a fault run of a job or three that takes longer than this is taken to hang


def rerun_copy(slurm_dag, tmp_path, *outputs) -> Path:
    """The finished run's working directory less `outputs`; runs in it name what they want rebuilt as targets
    (with only `all` as target Snakemake would not rebuild them: `aggregate`, which reads them, is up to
    date)."""
    workdir = tmp_path / "run"
    # copies with their times (hard links would save 120 MB, but NLTK refuses to read hard-linked files)
    shutil.copytree(
        slurm_dag.workdir,
        workdir,
        symlinks=True,
        ignore=shutil.ignore_patterns("run.log", "slurm_logs", "log", "locks"),
    )
    for output in outputs:
        path = workdir / output
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return workdir


def rule_process(job_id: str, marker: str) -> int | None:
    """The PID of the rule's own process in a SLURM job (Snakemake runs a rule's script as python <marker>...)."""
    listed = subprocess.run(["scontrol", "listpids", job_id], capture_output=True, text=True).stdout
    for pid in [line.split()[0] for line in listed.splitlines()[1:] if line.strip()]:  # PID JOBID STEPID ...
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return int(pid)
        except OSError:
            continue
    return None


def test_gpu_rules_get_a_gres_gpu_with_the_profiles_one_line_change(slurm_dag, local_dag, tmp_path):
    # the variant the profile documents for sites that hand out GPUs as GRES: sbatch --gres=gpu:1, not --gpus=1
    text = (PROFILE / "profile.yaml").read_text()
    variant = re.search(r"^  #   (finetune: &gpu_job .*)$", text, re.MULTILINE).group(1)
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "profile.yaml").write_text(
        re.sub(r"^  finetune: &gpu_job .*$", f"  {variant}", text, count=1, flags=re.MULTILINE)
    )
    workdir = rerun_copy(slurm_dag, tmp_path, f"{SHARD}/shard1.csv", f"{SHARD}.json")
    output = slurm_run(workdir, [slurm_dag.overlay], f"{SHARD}.json", profile=profile)
    (attack,) = [j for j in sacct(run_id(output)) if j["rule"] == "attack"]
    assert attack["State"] == "COMPLETED" and "gres/gpu=1" in attack["AllocTRES"] and attack["Partition"] == "gpu"
    shown = subprocess.run(["scontrol", "show", "job", attack["JobIDRaw"]], capture_output=True, text=True).stdout
    assert "TresPerNode=gres:gpu:1" in shown and "TresPerJob" not in shown, shown  # --gres, not --gpus
    assert_same_results(workdir, local_dag.results)


def test_a_crashed_job_and_a_cancelled_job_are_retried(slurm_dag, local_dag, tmp_path):
    # both attack shards of a model run again: one crashes, the other is cancelled with scancel
    targets = [f"{SHARD}/shard0.csv", f"{SHARD}/shard1.csv"]
    workdir = rerun_copy(slurm_dag, tmp_path, *targets)
    head = start(workdir, [slurm_dag.overlay], *targets)
    crashed = wait_for_job(head.log, "attack")
    end = time.time() + 300
    while (pid := rule_process(crashed["id"], "attack.py")) is None and time.time() < end:
        time.sleep(0.2)
    assert pid, f"no attack.py process in SLURM job {crashed['id']}"
    os.kill(pid, signal.SIGKILL)  # as the kernel's out-of-memory killer or a segfault would end it
    cancelled = wait_for_job(head.log, "attack", exclude=crashed["id"])
    subprocess.run(["scancel", cancelled["id"]], check=True)
    output = finish(head, FAULT_HANG)  # plugin 2.8.0 polling sacct would wait for the cancelled job forever
    assert "steps (100%) done" in output, output[-4000:]
    assert f"SLURM-job '{crashed['id']}' failed, SLURM status is: 'FAILED'" in output, output[-4000:]
    assert f"SLURM-job '{cancelled['id']}' failed, SLURM status is: 'CANCELLED'" in output, output[-4000:]
    jobs = {j["JobIDRaw"]: j for j in sacct(run_id(output))}
    assert jobs[crashed["id"]]["State"] == "FAILED" and jobs[cancelled["id"]]["State"].startswith("CANCELLED")
    retried = [j for j in jobs.values() if j["JobIDRaw"] not in (crashed["id"], cancelled["id"])]
    assert sorted(j["Comment"] for j in retried) == sorted((crashed["comment"], cancelled["comment"]))
    assert all(j["State"] == "COMPLETED" for j in retried), retried  # the profile's retries: 1
    assert_same_results(workdir, local_dag.results)


def test_a_node_failure_does_not_poison_later_submissions(cluster, slurm_dag, local_dag, tmp_path):
    # an attack shard runs when its node fails; gather_attack is submitted after the failure
    workdir = rerun_copy(slurm_dag, tmp_path, f"{SHARD}/shard0.csv", f"{SHARD}.json")
    head = start(workdir, [slurm_dag.overlay], f"{SHARD}.json")
    job = wait_for_job(head.log, "attack")
    node = ["scontrol", "update", f"nodename={cluster.node}"]
    subprocess.run([*node, "state=down", "reason=test_slurm node failure"], check=True)
    time.sleep(3)
    subprocess.run([*node, "state=resume"], capture_output=True)  # an error if it already came back by itself
    output = finish(head, FAULT_HANG)
    assert "steps (100%) done" in output, output[-4000:]
    assert "exclude" not in output.lower() and "submission failed" not in output.lower(), output[-4000:]
    jobs = sacct(run_id(output), duplicates=True)
    attack = [j["State"] for j in jobs if j["JobIDRaw"] == job["id"]]
    assert attack == ["NODE_FAIL", "COMPLETED"], attack  # requeued by SLURM, the same job id ran again
    assert [(j["rule"], j["State"]) for j in jobs if j["JobIDRaw"] != job["id"]] == [("gather_attack", "COMPLETED")]
    assert_same_results(workdir, local_dag.results)


def test_a_killed_head_restarts_as_documented(slurm_dag, local_dag, tmp_path):
    targets = [EVAL]  # the model's evaluate job: in domain and on tweets
    workdir = rerun_copy(slurm_dag, tmp_path, *targets)
    head = start(workdir, [slurm_dag.overlay], *targets)
    wait_for_job(head.log, "evaluate")
    os.killpg(head.process.pid, signal.SIGKILL)
    head.process.wait()
    old = run_id(head.log.read_text())
    assert squeue(old), "the killed head's jobs should still be out"
    locked = subprocess.run(
        command(workdir, [slurm_dag.overlay], "-n", *targets), cwd=workdir, env=ENV, capture_output=True, text=True
    )
    assert "Directory cannot be locked" in locked.stdout + locked.stderr  # hence --unlock below
    # README "Running on a cluster", after a crash: cancel the old run's jobs, unlock, rerun
    cancel = subprocess.run([str(PROFILE / "cancel-run.sh")], cwd=workdir, capture_output=True, text=True, timeout=200)
    assert cancel.returncode == 0 and old in cancel.stdout, cancel.stdout + cancel.stderr
    assert not squeue(old)
    subprocess.run(
        command(workdir, [slurm_dag.overlay], "--unlock"), cwd=workdir, env=ENV, check=True, capture_output=True
    )
    output = slurm_run(workdir, [slurm_dag.overlay], *targets, log="rerun.log")  # the same command as before
    new = sacct(run_id(output))
    assert [j["Comment"] for j in new] == ["rule_evaluate_wildcards_rotten_tomatoes_none_base_1"]
    # no duplicates: every job of the old run had ended before the new run submitted its first
    first_submit = min(j["Submit"] for j in new)
    assert all(j["End"] != "Unknown" and j["End"] <= first_submit for j in sacct(old)), sacct(old)
    assert_same_results(workdir, local_dag.results)


# --- threads ------------------------------------------------------------------------------------------


def test_threads_up_to_scales_locally_but_not_in_cluster_jobs():
    from test_workflow import _common

    common = _common()
    for cores, remote, expected in ((2, False, 1), (4, False, 2), (16, False, 4), (2, True, 4), (None, False, 4)):

        def total_cores(self, cores=cores):
            if cores is None:
                raise RuntimeError("Workflow requires a total number of cores to be defined")
            return cores

        common.threads_up_to.__globals__["workflow"] = type(
            "Workflow", (), {"remote_exec": remote, "cores": property(total_cores)}
        )()
        assert common.threads_up_to(4) == expected, (cores, remote)
