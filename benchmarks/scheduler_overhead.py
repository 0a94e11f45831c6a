"""Snakemake's own CPU time while jobs wait for cores, with and without rules/scheduler.smk (not a test).

Every job's end starts a chain of re-evaluation timers in Snakemake's scheduler that never stops (rules/scheduler.smk
says why), so the rounds per second grow with the jobs done. This runs one synthetic workflow (``--jobs`` jobs that
sleep, each with one input file and a params function, more jobs than cores) as Snakemake is and with the
workflow's one-pending-timer patch included, alternately, and prints Snakemake's CPU seconds per minute of wall time
for each and their ratio. The jobs themselves (``sleep``) use no CPU, so what is measured is the scheduler; a round
of the real workflow costs more than a synthetic one (more params functions, more inputs).

    .venv/bin/python benchmarks/scheduler_overhead.py                 # 80 jobs of 1.5 s on 2 cores, 2 rounds
    .venv/bin/python benchmarks/scheduler_overhead.py --jobs 200 --rounds 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARMS = {"as is": "", "patched": f'include: "{ROOT / "rules" / "scheduler.smk"}"'}
SNAKEFILE = """
{include}
N = {jobs}

rule all:
    input: expand("out/{{i}}.txt", i=range(N))

rule source:
    output: "in/{{i}}.txt"
    shell: "touch {{output}}"

rule work:
    input: "in/{{i}}.txt"
    output: "out/{{i}}.txt"
    params: extra=lambda wildcards, input: len(str(input))
    shell: "sleep {seconds}; touch {{output}}"
"""


def cpu_seconds_of(command: list[str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds of the command and its children, wall seconds)."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=80)
    parser.add_argument("--seconds", type=float, default=1.5, help="each job's sleep")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    rates = {arm: [] for arm in ARMS}
    for _ in range(args.rounds):
        for arm, include in ARMS.items():  # alternating, so that drift of the machine affects both alike
            with tempfile.TemporaryDirectory() as workdir:
                text = SNAKEFILE.format(include=include, jobs=args.jobs, seconds=args.seconds)
                Path(workdir, "Snakefile").write_text(text)
                for source in range(args.jobs):  # the inputs exist: only the waiting `work` jobs are scheduled
                    Path(workdir, "in").mkdir(exist_ok=True)
                    Path(workdir, "in", f"{source}.txt").touch()
                command = [snakemake, "--cores", str(args.cores), "--scheduler", "greedy", "--quiet", "all"]
                cpu, wall = cpu_seconds_of(command, Path(workdir))
                rates[arm].append(60 * cpu / wall)
                print(f"{arm}: {cpu:.1f} CPU s in {wall:.0f} s of wall time", flush=True)
    median = {arm: statistics.median(values) for arm, values in rates.items()}
    print(
        f"\n{args.jobs} jobs of {args.seconds:g} s on {args.cores} cores, median of {args.rounds}: Snakemake's CPU "
        + ", ".join(f"{arm} {rate:.1f} s per wall minute" for arm, rate in median.items())
        + f" ({median['as is'] / median['patched']:.1f}x)"
    )


if __name__ == "__main__":
    main()
