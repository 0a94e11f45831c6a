"""The files behind the README's and the docs' tables and figures, copied from a finished run's folder into
docs/evidence/ (not a test): the claims (claims.csv, the forest plots), the summary, the training table, the
learning curves, the job costs, and run.json: the commit and the machine the run was made with.

    .venv/bin/python benchmarks/collect_evidence.py RUN_FOLDER [EVIDENCE_FOLDER] [--cores N]
    make evidence OUT=RUN_FOLDER             # the same, into docs/evidence

RUN_FOLDER is the folder `make run` ran in (its OUT: the repository root for the default experiment), holding
results/. Run it on the machine of the run, from the run's checkout: the commit is that checkout's HEAD (with its
uncommitted changes listed: the README's run set `precision: fp32` in its clone), the CPU this machine's, and
the rest (platform, device, precision, threads, library versions) what the run's training records say.
tests/test_evidence.py then checks the README's claims table against claims.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# results/report files copied as they are: the README's claims table and figure, the summary, the training table
REPORT_FILES = (
    "claims.csv",
    "summary.md",
    "training.csv",
    "claims.png",
    "claims_headline.png",
    "neurons.csv",
    "neurons_layers.png",
)
# the run-analysis scripts whose Markdown output the docs quote: output file -> script
TABLES = {"job_costs.md": "job_costs.py", "learning_curves.md": "learning_curves.py"}


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True).stdout.strip()


def cpu_model() -> str:
    """The CPU's model name (Linux), else what platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run_record(run: Path, cores: int) -> dict:
    """The commit and the machine of the run: git of the run's checkout, this CPU, and one training record's
    provenance (every model of a run shares it but for the seed and the parameters)."""
    logs = sorted((run / "results" / "models").glob("*/*/*/seed*/train_log.json"))
    if not logs:
        raise SystemExit(f"{run / 'results' / 'models'}: no training record (train_log.json): not a finished run")
    provenance = json.loads(logs[0].read_text())["provenance"]
    versions = provenance.get("versions", {})
    return {
        "commit": git(run, "rev-parse", "HEAD"),
        "uncommitted_changes": git(run, "status", "--porcelain", "--untracked-files=no").splitlines(),
        "cpu": cpu_model(),
        "cores": cores,
        "platform": provenance.get("platform"),
        "device": provenance.get("device"),
        "cuda_device": provenance.get("cuda_device"),
        "precision": provenance.get("precision"),
        "torch_threads": provenance.get("torch_threads"),
        "python": provenance.get("python"),
        "versions": {name: versions[name] for name in sorted(versions)},
        "models": len(logs),
    }


def collect(run: Path, evidence: Path, cores: int) -> list[Path]:
    """Copy and write every evidence file; returns the files written."""
    report = run / "results" / "report"
    missing = [name for name in REPORT_FILES if not (report / name).exists()]
    if missing:
        raise SystemExit(f"{report}: missing {', '.join(missing)}: the run's aggregate has not finished")
    evidence.mkdir(parents=True, exist_ok=True)
    written = []
    for name in REPORT_FILES:
        written.append(Path(shutil.copy2(report / name, evidence / name)))
    for name, script in TABLES.items():
        arguments = [str(run / "results")] + (["--cores", str(cores)] if script == "job_costs.py" else [])
        command = [sys.executable, str(ROOT / "benchmarks" / script), *arguments]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"benchmarks/{script} {' '.join(arguments)} failed:\n{done.stderr}")
        (evidence / name).write_text(done.stdout)
        written.append(evidence / name)
    (evidence / "run.json").write_text(json.dumps(run_record(run, cores), indent=2) + "\n")
    written.append(evidence / "run.json")
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run's folder (make run's OUT), holding results/")
    parser.add_argument("evidence", nargs="?", type=Path, default=ROOT / "docs" / "evidence")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="cores of the run's machine")
    args = parser.parse_args(argv)
    for path in collect(args.run.resolve(), args.evidence, args.cores):
        print(path)


if __name__ == "__main__":
    main()
