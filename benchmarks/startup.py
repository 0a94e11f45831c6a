"""Start-up of the workflow's short jobs, before and after a change to the library (not a test).

A job's start-up is what it does before its work: the interpreter, Snakemake's script preamble (it unpickles the
job's ``snakemake`` object, importing Snakemake), the script's imports and what it loads. Each kind of job below
is re-enacted in a fresh interpreter with ``PYTHONPATH`` pointing at one checkout's ``workflow_scripts``; the
checkouts are run in turn, round by round (their order alternating), so that the load of a shared machine falls
on all alike. Printed per job kind and checkout: the median wall and CPU seconds (the child's user + system time,
which other processes on the machine hardly change) and the ratio to the first checkout.

    .venv/bin/python benchmarks/startup.py --checkouts /path/to/before /path/to/after --results results
    .venv/bin/python benchmarks/startup.py --checkouts . --jobs attack --repeats 3

Needs from ``--results``: resources/minilm and resources/nltk_data (the prepare_resources rule).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREAMBLE = "import pickle; from snakemake.logging import logger; from snakemake.iocontainers import Snakemake\n"


def script_imports(name: str) -> str:
    """Execute a rule's script as a module (its imports; ``main`` is not called, as outside Snakemake)."""
    return (
        "import importlib.util, os\n"
        f"spec = importlib.util.spec_from_file_location('{name}', os.path.join(os.environ['SCRIPTS'], '{name}.py'))\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )


# Each job's start-up, as its script runs it up to its work (RESULTS: the results directory).
JOBS = {
    "interpreter": "pass\n",
    "gather_attack": PREAMBLE
    + script_imports("gather_attack")
    + "from advlm import runtime\nruntime.setup(1, None, uses_torch=False)\n",
    "extract_activations": PREAMBLE
    + script_imports("extract_activations")
    + "from advlm import runtime, models\nruntime.setup(1, 7)\n"
    + "models.load_encoder(RESULTS + '/resources/minilm'); models.load_tokenizer(RESULTS + '/resources/minilm')\n",
    "attack": PREAMBLE
    + script_imports("attack")
    + "from advlm import runtime, models\nfrom advlm.attacks import running\nruntime.setup(1, 765)\n"
    + "model = models.load_classifier(RESULTS + '/resources/minilm', 2)\n"
    + "tokenizer = models.load_tokenizer(RESULTS + '/resources/minilm')\n"
    + "running.make_wrapper(model, tokenizer, 64, 64, RESULTS + '/resources')\n"
    + "from advlm.attacks import recipes\n",
}


def run_once(code: str, scripts: Path, results: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter running ``code``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(scripts),
        "SCRIPTS": str(scripts),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    program = f"RESULTS = {str(results)!r}\n" + code
    with tempfile.TemporaryFile("w+") as errors:
        began = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", program], env=env, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)  # the child's own CPU time
        wall = time.perf_counter() - began
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"start-up of {scripts} failed:\n{errors.read()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkouts", nargs="+", type=Path, default=[ROOT], help="the first is the baseline")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    scripts = [checkout.resolve() / "workflow_scripts" for checkout in args.checkouts]
    times = {(job, str(path)): [] for job in args.jobs for path in scripts}
    for round_ in range(args.repeats):
        for job in args.jobs:
            order = scripts if round_ % 2 == 0 else scripts[::-1]
            for path in order:
                times[job, str(path)].append(run_once(JOBS[job], path, args.results.resolve()))
    print(f"median of {args.repeats} fresh interpreters per job and checkout, run in turn")
    print("| job | checkout | wall s | CPU s | CPU / first checkout's |")
    print("|---|---|---|---|---|")
    for job in args.jobs:
        baseline = statistics.median(cpu for _, cpu in times[job, str(scripts[0])])
        for checkout, path in zip(args.checkouts, scripts):
            wall = statistics.median(w for w, _ in times[job, str(path)])
            cpu = statistics.median(c for _, c in times[job, str(path)])
            print(f"| {job} | {checkout} | {wall:.2f} | {cpu:.2f} | {cpu / baseline:.2f} |")


if __name__ == "__main__":
    main()
