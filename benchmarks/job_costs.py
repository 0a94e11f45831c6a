"""Where a finished run's time went, per rule (not a test): start-up against work, and model FLOP/s against the
machine's matrix-product peak.

Every job logs one ``job time:`` line (``advlm/timing.py``): its wall time split into start-up (interpreter and
module-level imports), later imports, loading models and resources, and work; the time inside the watched models'
forward passes; the matrix-product FLOPs of those passes (backward passes included); and this machine's fp32 and
bf16 peak measured by the same job at its end, on its own thread count and under the same load. This script
gathers them into one table per rule (attacks per recipe, fine-tuning per method):

    .venv/bin/python benchmarks/job_costs.py                  # results/ of the default experiment
    .venv/bin/python benchmarks/job_costs.py path/to/results --json costs.json
    .venv/bin/python benchmarks/job_costs.py path/to/results --csv benchmarks/job_costs_<commit>.csv  # priorities

Columns: jobs; job-seconds (sum of wall times) and their share of the run's; seconds per job; the shares of wall
time spent starting up (start-up + imports + loading) and working; the share of work inside the model's forward
passes (for an attack: the victim's queries); achieved model FLOP/s over the work as a share of the same job's
fp32 and bf16 peak; and the floor: the job-seconds the rule's model FLOPs take at its jobs' peak for the precision
they ran in. Ratios, not absolute times: the machine is shared and its speed drifts, but a job's work and its
peak are measured side by side.

A second table splits the work of the rules that run more than one model or a tagger (the attacks, ``a2t``
fine-tuning): the victim's queries, the sentence encoder, the part-of-speech tagger, the masked LM, and the rest
(search, transformations, the cheap constraints, Python). The first line gives the run's floor on ``--cores``
cores (default: this machine's): no schedule finishes the run's model arithmetic in fp32 (or bf16) sooner.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

MARKER = "job time: "


def job_records(results: Path) -> list[dict]:
    """One record per job log holding a ``job time:`` line: its rule (attacks: ``attack:<recipe>``, fine-tuning:
    ``finetune:<method>``) and times."""
    records = []
    for log in sorted((results / "logs").rglob("*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines() if MARKER in line]
        if not lines:
            continue
        record = json.loads(lines[-1].split(MARKER, 1)[1])
        rule = log.relative_to(results / "logs").parts[0]
        if rule in ("attack", "finetune"):  # the log's folder: the recipe, the method (or sweep point)
            rule = f"{rule}:{log.parent.name}"
        elif rule == "attack_train":
            rule = f"{rule}:advaug"
        records.append({"rule": rule, "log": str(log), **record})
    return records


def summarize(records: list[dict]) -> list[dict]:
    by_rule = defaultdict(list)
    for record in records:
        by_rule[record["rule"]].append(record)
    total = sum(record["wall"] for record in records)
    rows = []
    for rule, jobs in sorted(by_rule.items(), key=lambda item: -sum(job["wall"] for job in item[1])):
        wall = sum(job["wall"] for job in jobs)
        work = sum(job["work"] for job in jobs)
        row = {
            "rule": rule,
            "jobs": len(jobs),
            "job_seconds": wall,
            "share_of_run": wall / total,
            "seconds_per_job": wall / len(jobs),
            "startup_share": sum(job["startup"] + job["imports"] + job["load"] for job in jobs) / wall,
            "work_share": work / wall,
            "model_share_of_work": sum(job["model"] for job in jobs) / work if work else None,
        }
        parts = sorted({name for job in jobs for name in job.get("parts", {})})
        row["part_shares"] = {
            name: sum(job.get("parts", {}).get(name, 0.0) for job in jobs) / work if work else None for name in parts
        }
        row["floor_job_seconds"] = sum(floor_seconds(job) for job in jobs)
        measured = [job for job in jobs if job.get("peak") and job["work"] > 0]
        for precision in ("fp32", "bf16"):
            # each job's achieved FLOP/s against its own peak, weighted by its work time
            ratios = [
                (sum(job["flops"].values()) / job["work"] / job["peak"][precision], job["work"]) for job in measured
            ]
            weight = sum(w for _, w in ratios)
            row[f"of_{precision}_peak"] = sum(r * w for r, w in ratios) / weight if weight else None
        rows.append(row)
    return rows


def floor_seconds(job: dict) -> float:
    """Seconds the job's model FLOPs take at its own measured matrix-product peak, each precision at its own
    (CPU jobs; a GPU job's peak is not measured and counts 0)."""
    peak, seconds = job.get("peak") or {}, 0.0
    for key, flops in job.get("flops", {}).items():  # key: <device>-<precision>
        device, precision = key.split("-", 1)
        if device == "cpu" and precision in peak:
            seconds += flops / peak[precision]
    return seconds


def markdown(rows: list[dict], records: list[dict], cores: int) -> str:
    def pct(value):
        return "" if value is None else f"{100 * value:.0f} %" if value >= 0.01 else f"{100 * value:.1f} %"

    total = sum(record["wall"] for record in records)
    startup = sum(record["startup"] + record["imports"] + record["load"] for record in records)
    floor = sum(row["floor_job_seconds"] for row in rows)
    lines = [
        f"{len(records)} jobs, {total:.0f} job-seconds, of which {pct(startup / total)} starting up "
        "(interpreter, imports, loading models and resources). Floor: their model FLOPs take "
        f"{floor:.0f} job-seconds at the jobs' measured peak, {floor / cores / 60:.1f} min on {cores} cores "
        f"({pct(floor / total)} of the job-seconds)",
        "",
        "| rule | jobs | job-s | share of run | s per job | starting up | working | model passes of work "
        "| FLOP/s of fp32 peak | of bf16 peak | floor job-s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['rule']}` | {row['jobs']} | {row['job_seconds']:.0f} | {pct(row['share_of_run'])} "
            f"| {row['seconds_per_job']:.1f} | {pct(row['startup_share'])} | {pct(row['work_share'])} "
            f"| {pct(row['model_share_of_work'])} | {pct(row['of_fp32_peak'])} | {pct(row['of_bf16_peak'])} "
            f"| {row['floor_job_seconds']:.0f} |"
        )
    split = [row for row in rows if row["part_shares"]]
    if split:
        parts = sorted({name for row in split for name in row["part_shares"]})
        lines += [
            "",
            "| rule | work s | victim / trained model | " + " | ".join(parts) + " | rest |",
            "|---|---|---|" + "---|" * len(parts) + "---|",
        ]
        for row in split:
            shares = [row["part_shares"].get(name) or 0.0 for name in parts]
            rest = 1.0 - row["model_share_of_work"] - sum(shares)
            work = row["job_seconds"] * row["work_share"]
            cells = [f"`{row['rule']}`", f"{work:.0f}", pct(row["model_share_of_work"])]
            lines.append("| " + " | ".join(cells + [pct(share) for share in shares] + [pct(rest)]) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results", type=Path)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--csv", type=Path, help="also write the per-rule costs here (input of advlm.priorities)")
    parser.add_argument("--csv-comment", default="", help="the CSV's header comment: which run, where, how")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="cores of the run's machine (the floor)")
    args = parser.parse_args(argv)
    records = job_records(args.results)
    if not records:
        raise SystemExit(f"no 'job time:' lines under {args.results}/logs: run the workflow first")
    rows = summarize(records)
    print(markdown(rows, records, args.cores))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.csv:
        args.csv.write_text(costs_csv(rows, args.csv_comment))


def costs_csv(rows: list[dict], comment: str = "") -> str:
    """The per-rule costs table the job priorities are computed from (advlm.priorities.read_costs)."""
    lines = [f"# {line}" for line in comment.splitlines()] + ["rule,jobs,job_seconds,seconds_per_job"]
    lines += [f"{r['rule']},{r['jobs']},{r['job_seconds']:.0f},{r['seconds_per_job']:.1f}" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
