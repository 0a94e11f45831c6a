"""Job priorities from measured job costs (advlm.priorities): the longest remaining chain first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from advlm import priorities

ROOT = Path(__file__).resolve().parents[1]
COSTS = ROOT / "benchmarks" / "job_costs_6d6e101.csv"

# A DAG as `snakemake --dag` draws it: base's model feeds advaug's examples, which feed advaug's model; every
# model is attacked, and the attacks are gathered by the report.
DOT = r"""digraph snakemake_dag {
    node[shape=box];
	0[label = "all", color = "0.04 0.6 0.85", style="rounded"];
	1[label = "finetune\nmethod: base", color = "0.31 0.6 0.85", style="rounded"];
	2[label = "attack_train\nexamples: adversarial", color = "0.12 0.6 0.85", style="rounded"];
	3[label = "finetune\nmethod: advaug", color = "0.31 0.6 0.85", style="rounded"];
	4[label = "finetune\nmethod: pgd", color = "0.31 0.6 0.85", style="rounded"];
	5[label = "attack\nattack: pwws\nshard: 0", color = "0.1 0.6 0.85", style="rounded"];
	6[label = "attack\nattack: pwws\nshard: 0", color = "0.1 0.6 0.85", style="rounded"];
	7[label = "attack\nattack: deepwordbug\nshard: 0", color = "0.1 0.6 0.85", style="rounded"];
	8[label = "aggregate", color = "0.0 0.6 0.85", style="rounded"];
	8 -> 0
	1 -> 2
	2 -> 3
	3 -> 5
	4 -> 6
	1 -> 7
	5 -> 8
	6 -> 8
	7 -> 8
}
"""
TABLE = {
    "finetune": 100.0,
    "attack_train:advaug": 50.0,
    "attack:pwws": 30.0,
    "attack:deepwordbug": 10.0,
    "aggregate": 1.0,
}


def test_remaining_chain_is_the_longest_path_to_the_end():
    chains = priorities.remaining_chains(
        {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}, [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    )
    assert chains == {"a": 7.0, "b": 6.0, "c": 3.0, "d": 1.0}


def test_a_cycle_is_an_error():
    with pytest.raises(ValueError, match="cycle"):
        priorities.remaining_chains({"a": 1.0, "b": 1.0}, [("a", "b"), ("b", "a")])


def test_priorities_follow_the_jobs_chains_and_variants():
    jobs, edges = priorities.read_dag(DOT)
    assert jobs["5"] == {"rule": "attack", "wildcards": {"attack": "pwws", "shard": "0"}}
    ranks = priorities.priorities(TABLE, jobs, edges)
    # base feeds advaug's examples: its chain runs through attack_train and advaug's model and attack
    assert ranks["finetune:base"] == 100 + 50 + 100 + 30 + 1
    assert ranks["finetune:pgd"] == ranks["finetune:advaug"] == 100 + 30 + 1
    assert ranks["attack:pwws"] == 31 and ranks["attack:deepwordbug"] == 11  # each recipe at its own cost
    assert "all" not in ranks
    assert list(ranks)[0] == "finetune:base"  # highest first


def test_a_job_without_a_cost_is_named():
    jobs, edges = priorities.read_dag(DOT)
    with pytest.raises(KeyError, match="attack:deepwordbug"):
        priorities.priorities({key: value for key, value in TABLE.items() if "deepwordbug" not in key}, jobs, edges)


def test_a_bad_cost_row_is_named(tmp_path):
    path = tmp_path / "costs.csv"
    path.write_text("# a comment\nrule,jobs,job_seconds,seconds_per_job\nfinetune,24,3575,149.0\nevaluate,24,1016,?\n")
    with pytest.raises(ValueError, match=r"costs.csv, data row 2 \('evaluate'\)"):
        priorities.read_costs(path)


def test_the_committed_costs_cover_every_rule():
    """Every rule of the workflow has a measured cost (a new rule needs a run's row before it gets a priority)."""
    texts = [path.read_text() for path in (ROOT / "rules").glob("*.smk")]
    rules = {name for text in texts for name in re.findall(r"^rule (\w+):", text, re.MULTILINE)}
    costs = priorities.read_costs(COSTS)
    assert costs["finetune:a2t"] == 869.7 and costs["attack:pwws"] == 70.1

    missing = sorted(rule for rule in rules if not any(key.partition(":")[0] == rule for key in costs))
    assert missing == []


def test_written_priorities_are_looked_up_per_job(tmp_path, capsys):
    (tmp_path / "costs.csv").write_text(
        "rule,seconds_per_job\n" + "".join(f"{rule},{seconds}\n" for rule, seconds in TABLE.items())
    )
    (tmp_path / "dag.dot").write_text(DOT)
    priorities.main([str(tmp_path / "costs.csv"), str(tmp_path / "dag.dot"), "--write", str(tmp_path / "p.csv")])
    assert "finetune:base: priority 281" in capsys.readouterr().out
    table = priorities.read_priorities(tmp_path / "p.csv")
    assert priorities.job_priority(table, "finetune", {"method": "pgd", "seed": "1"}) == 131
    assert priorities.job_priority(table, "finetune", {"method": "pgd-epsilon=1"}) == 281  # its rule's highest
    assert priorities.job_priority(table, "attack", {"attack": "deepwordbug", "shard": "0"}) == 11
    assert priorities.job_priority(table, "aggregate", {}) == 1
    assert priorities.job_priority(table, "a_new_rule", {}) == 0
