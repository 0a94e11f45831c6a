"""A real finetune job killed with SIGKILL in the middle of an epoch (as a preemption kills it), then run again
as the README says (--unlock, rerun), ends with the same weights as an uninterrupted run, byte for byte."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from smk import ENV, command, run, write_overlay
from tiny_model import build_tiny_bert

MODEL = "rotten_tomatoes/none/base/seed1"
TARGET = f"results/models/{MODEL}/model"


def _wait_for_progress(path, process, ready, timeout=300):
    """The checkpoint's progress once ``ready(progress)``; fails if the job ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        try:
            progress = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or being written
            progress = None
        if progress and ready(progress):
            return progress
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint at {path} within {timeout} s")


def _processes_in(workdir):
    """Processes still running whose command line names ``workdir``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if str(workdir) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_a_killed_finetune_job_resumes_to_the_same_weights(tmp_path):
    tiny = build_tiny_bert(tmp_path / "tiny_bert")
    # 240 examples in batches of 4: 60 steps per epoch, a checkpoint every 10 steps and at the end of epoch 1
    settings = {
        "model": {"name": str(tiny), "max_length": 32},
        "data": {"max_examples": {"train": 240, "validation": 16, "test": 16}},
        "finetune": {"methods": ["base"], "seeds": [1], "epochs": 2, "batch_size": 4},
        "checkpoint": {"every_steps": 10},
    }
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run(straight, TARGET, configfiles=[write_overlay(straight, **settings)])

    overlay = write_overlay(killed, **settings)
    process = subprocess.Popen(
        command(killed, TARGET, configfiles=[overlay]),
        cwd=killed,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    progress_file = killed / f"results/checkpoints/finetune/{MODEL}/progress.json"
    killed_at = _wait_for_progress(progress_file, process, lambda p: p["epoch"] == 2 and p["where"] == "step")
    os.killpg(process.pid, signal.SIGKILL)  # Snakemake and its job, as a preemption or a crash does
    process.wait()
    time.sleep(0.5)
    assert not _processes_in(killed) and not (killed / TARGET).exists()
    assert 60 < killed_at["step"] < 120  # mid-epoch 2: the job had more to do

    run(killed, "--unlock", configfiles=[overlay])
    run(killed, TARGET, configfiles=[overlay])
    log = (killed / f"results/logs/finetune/{MODEL}.log").read_text()
    assert "resuming from" in log, log
    weights = [(workdir / TARGET / "model.safetensors").read_bytes() for workdir in (straight, killed)]
    assert weights[0] == weights[1]
    assert not (killed / "results/checkpoints/finetune" / MODEL).exists()
