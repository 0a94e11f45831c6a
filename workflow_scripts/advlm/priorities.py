"""Job priorities from measured job costs: the critical path first.

A job's priority is the cost of the longest chain of jobs from it to the end of the workflow's DAG, its own
included: the seconds that remain, at the least, once it starts, however many cores there are. Snakemake starts
the ready job with the highest priority first, so the longest chains start early and a machine with enough cores
finishes in about the longest chain's time (issue 34).

The costs are a run's measured seconds per job, per rule (``benchmarks/job_costs.py``; the committed table is
``benchmarks/job_costs_6d6e101.csv``); a row ``<rule>:<variant>`` (``attack:pwws``, as job_costs.py names the
attacks by recipe) is that rule's jobs of one value of its variant wildcard (``VARIANT_WILDCARDS``) and takes
precedence over a plain ``<rule>`` row. The DAG is Snakemake's own (``snakemake --dag``), so that the chains follow
the rules as they are. Per rule (and variant), the priority is the longest remaining chain over its jobs, in whole
seconds. The rules read them from a file this module writes (``resources/priorities.csv``; :func:`read_priorities`,
:func:`job_priority`), rewritten when the costs or the rules change:

    snakemake --dag > dag.dot
    python -m advlm.priorities benchmarks/job_costs_6d6e101.csv dag.dot --write resources/priorities.csv
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import defaultdict
from pathlib import Path

# The wildcard whose value the cost table may distinguish within a rule (job_costs.py: attacks per recipe).
VARIANT_WILDCARDS = {"attack": "attack", "attack_train": "examples", "finetune": "method"}
# job_costs.py names attack_train's jobs after the one method they serve.
VARIANT_NAMES = {"attack_train": "advaug"}
# Rules without a job: Snakemake's target rule.
NO_JOB = ("all",)


def read_costs(path: str | Path) -> dict[str, float]:
    """Seconds per job by rule (or ``rule:variant``) from a job-costs CSV (columns ``rule`` and
    ``seconds_per_job``; lines starting with # are comments). A bad row stops with the file and row."""
    lines = [line for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    costs = {}
    for number, row in enumerate(csv.DictReader(lines), start=2):
        where = f"{path}, data row {number - 1} ({row.get('rule')!r})"
        if not row.get("rule"):
            raise ValueError(f"{where}: no rule")
        try:
            seconds = float(row["seconds_per_job"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: seconds_per_job {row.get('seconds_per_job')!r} is not a number") from None
        if seconds < 0 or row["rule"] in costs:
            raise ValueError(f"{where}: negative or repeated")
        costs[row["rule"]] = seconds
    return costs


def read_dag(dot: str) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """Jobs and dependencies of a ``snakemake --dag`` graph: {node: {"rule": ..., "wildcards": {...}}} and the
    (upstream, downstream) edges (Snakemake draws an edge from a job to the job that needs its output)."""
    jobs = {}
    for node, label in re.findall(r'^\s*(\d+)\[label = "([^"]*)"', dot, re.MULTILINE):
        rule, *pairs = label.split("\\n")
        jobs[node] = {"rule": rule, "wildcards": dict(pair.split(": ", 1) for pair in pairs)}
    edges = re.findall(r"^\s*(\d+) -> (\d+)", dot, re.MULTILINE)
    if not jobs:
        raise ValueError("no jobs in the DAG: give the output of `snakemake --dag`")
    return jobs, edges


def job_key(job: dict) -> str:
    """The cost table's name for a job's rule and variant (``attack:pwws``), or its rule where it has none."""
    wildcard = VARIANT_WILDCARDS.get(job["rule"])
    variant = VARIANT_NAMES.get(job["rule"]) or job["wildcards"].get(wildcard)
    return f"{job['rule']}:{variant}" if wildcard and variant else job["rule"]


def job_cost(job: dict, costs: dict[str, float]) -> float:
    """A job's seconds: its variant's row where the table has one, else its rule's."""
    if job["rule"] in NO_JOB:
        return 0.0
    for key in (job_key(job), job["rule"]):
        if key in costs:
            return costs[key]
    raise KeyError(f"no cost for rule {job['rule']!r} ({job_key(job)!r}) in the job-costs table")


def remaining_chains(costs: dict[str, float], edges) -> dict[str, float]:
    """For every node, the largest sum of costs along a path from it (itself included) to a node with no
    successor. ``edges``: (upstream, downstream) pairs; a cycle is an error naming a node on it."""
    downstream = defaultdict(list)
    for upstream, successor in edges:
        downstream[upstream].append(successor)
    chains, visiting = {}, set()

    def chain(node: str) -> float:
        if node in chains:
            return chains[node]
        if node in visiting:
            raise ValueError(f"the graph has a cycle through {node!r}: no longest chain")
        visiting.add(node)
        chains[node] = costs[node] + max((chain(successor) for successor in downstream[node]), default=0.0)
        visiting.discard(node)
        return chains[node]

    for node in costs:
        chain(node)
    return chains


def priorities(costs: dict[str, float], jobs: dict[str, dict], edges) -> dict[str, int]:
    """Per rule (and variant, where the table or the DAG tells them apart): the longest remaining chain over its
    jobs, in whole seconds; Snakemake's target rule left out."""
    chains = remaining_chains({node: job_cost(job, costs) for node, job in jobs.items()}, edges)
    best = defaultdict(float)
    for node, job in jobs.items():
        if job["rule"] not in NO_JOB:
            best[job_key(job)] = max(best[job_key(job)], chains[node])
    return {key: round(seconds) for key, seconds in sorted(best.items(), key=lambda item: -item[1])}


def read_priorities(path: str | Path) -> dict[str, int]:
    """The priorities :func:`main` wrote (``--write``): {rule or rule:variant: priority}."""
    with open(path, newline="") as handle:
        return {row["rule"]: int(row["priority"]) for row in csv.DictReader(handle)}


def job_priority(table: dict[str, int], rule: str, wildcards) -> int:
    """A job's priority in ``table``: its variant's where the table has one, else the highest of its rule's (a
    sweep point such as ``pgd-epsilon=1``, a recipe not run when the table was written); 0 for a rule the table
    does not know (a new rule runs last until a run has measured it)."""
    key = job_key({"rule": rule, "wildcards": dict(wildcards.items())})
    rules = [value for name, value in table.items() if name == rule or name.startswith(f"{rule}:")]
    return table.get(key, max(rules, default=0))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("costs", type=Path, help="a job-costs CSV (benchmarks/job_costs_6d6e101.csv)")
    parser.add_argument("dag", type=Path, help="the output of `snakemake --dag`")
    parser.add_argument("--write", type=Path, help="also write them here as CSV (rule, priority)")
    args = parser.parse_args(argv)
    jobs, edges = read_dag(args.dag.read_text())
    table = priorities(read_costs(args.costs), jobs, edges)
    for key, seconds in table.items():
        print(f"{key}: priority {seconds}")
    if args.write:
        with open(args.write, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["rule", "priority"])
            writer.writerows(table.items())


if __name__ == "__main__":
    main()
