"""In-job checkpoints of the long training jobs (finetune, pretrain_mlm).

A job killed or preempted mid-training finds its last checkpoint when it starts again and resumes from it,
ending bit-identical (on the CPU) to an uninterrupted run. A checkpoint holds everything the rest of the run
depends on: weights, optimizer and scheduler, every random state (Python, NumPy, torch CPU and CUDA, and the
training loop's own generator), the position in the epoch and what the loop has gathered so far.

It lives outside the job's declared outputs (which Snakemake deletes when a job fails), under
``results/checkpoints/<rule>/<wildcards>/``; it is written atomically (a temporary file, then a rename, so a
kill during the write leaves the previous checkpoint intact), carries a fingerprint of the job's inputs,
parameters and library code (a checkpoint of other settings is ignored, never resumed), and is removed when
the job completes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

log = logging.getLogger(__name__)
FILE = "checkpoint.pt"


def random_states() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.random.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_random_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.random.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def fingerprint(*parts) -> str:
    """sha256 of what a run's result depends on: settings (JSON), frames and state dicts (by content) and the
    library's code, so that a checkpoint is resumed only by the run that wrote it."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, pd.DataFrame):
            digest.update(json.dumps(list(map(str, part.columns))).encode())
            digest.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        elif isinstance(part, dict) and part and all(isinstance(v, torch.Tensor) for v in part.values()):
            for key, tensor in part.items():
                digest.update(key.encode())
                digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    for path in sorted(Path(__file__).parent.rglob("*.py")):  # the packages (advlm.attacks) too
        digest.update(path.read_bytes())
    return digest.hexdigest()


class Checkpoints:
    """The checkpoint of one job in ``directory``: written every ``every_steps`` optimizer steps (0: only at the
    points the training loop chooses, such as epoch ends), read back when the job starts again."""

    def __init__(self, directory: str | Path, every_steps: int, fingerprint: str):
        self.directory, self.every_steps, self.fingerprint = Path(directory), int(every_steps), fingerprint
        self.path = self.directory / FILE
        self.seconds = []  # time spent in each save, recorded by the training loops

    def due(self, step: int) -> bool:
        return self.every_steps > 0 and step % self.every_steps == 0

    def load(self) -> dict | None:
        """The saved state, or None when there is none or it belongs to other inputs, parameters or code."""
        if not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=False)  # our own file: RNG states, frames
        if state.get("fingerprint") != self.fingerprint:
            log.warning("ignoring %s: written for other inputs, parameters or code", self.path)
            return None
        log.info("resuming from %s (%s)", self.path, state["progress"])
        return state

    def save(self, state: dict, progress: dict) -> None:
        """Write ``state`` (plus every random state) atomically; ``progress`` says where the run is, for humans."""
        started = time.perf_counter()
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(FILE + ".tmp")
        with open(tmp, "wb") as handle:
            torch.save(
                {**state, "random": random_states(), "progress": progress, "fingerprint": self.fingerprint}, handle
            )
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename, so a crashed node cannot leave a torn file
        os.replace(tmp, self.path)
        (self.directory / "progress.json").write_text(json.dumps(progress) + "\n")
        self.seconds.append(time.perf_counter() - started)
        log.info("checkpoint %s in %.2f s", progress, self.seconds[-1])

    def remove(self) -> None:
        """Called once the job's outputs are written: nothing is left to resume."""
        shutil.rmtree(self.directory, ignore_errors=True)


def restore(state: dict, model, optimizer, scheduler=None, generator: torch.Generator | None = None) -> None:
    """Put a loaded checkpoint's weights, optimizer, scheduler and random states back in place."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if generator is not None:
        generator.set_state(state["generator"])
    set_random_states(state["random"])
