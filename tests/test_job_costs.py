"""What a job costs: the timing every job logs (advlm/timing.py), the table benchmarks/job_costs.py makes of it,
and the imports that jobs which never attack are spared."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from advlm import timing

ROOT = timing.__file__.rsplit("/workflow_scripts/", 1)[0]


def _job_costs():
    spec = importlib.util.spec_from_file_location("job_costs", f"{ROOT}/benchmarks/job_costs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_forward_flops_match_torch_flop_counter(tiny_bert):
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForSequenceClassification

    # eager attention: its two products are matmuls the counter sees (it does not count the fused SDPA kernel)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), attn_implementation="eager").eval()
    ids = torch.randint(1000, model.config.vocab_size, (3, 17))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    # the formula leaves out the pooler and the classifier: 0.3 % here, less at MiniLM's size
    assert timing.forward_flops(model.config, 3, 17) == pytest.approx(counter.get_total_flops(), rel=0.01)


def test_the_clock_charges_each_phase_once():
    clock = timing.Clock(process_start=0.0)
    clock.seconds["startup"] = 1.0
    clock.enter("load")
    clock.enter("imports")  # an import inside a load is charged to imports, not to both
    clock.leave()
    clock.leave()
    summary = clock.summary()
    assert summary["startup"] == 1.0 and min(summary["imports"], summary["load"], summary["work"]) >= 0
    assert summary["wall"] >= summary["imports"] + summary["load"] + summary["work"]


def test_job_costs_table_from_logged_job_times(tmp_path):
    def log(path, **times):
        record = {"startup": 1.0, "imports": 1.0, "load": 0.0, "model": 0.0, "flops": {}, **times}
        (tmp_path / "logs" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "logs" / path).write_text(f"2026-01-01 INFO advlm.timing: job time: {json.dumps(record)}\n")

    peak = {"fp32": 1e10, "bf16": 1e9}
    log(
        "attack/d/none/base/seed1/pwws/shard0.log", wall=12.0, work=10.0, model=6.0, flops={"cpu-fp32": 5e10}, peak=peak
    )
    log(
        "attack/d/none/base/seed1/pwws/shard1.log", wall=12.0, work=10.0, model=8.0, flops={"cpu-fp32": 3e10}, peak=peak
    )
    log("gather_attack/d/none/base/seed1/pwws.log", wall=3.0, work=1.0)
    parts = {"sentence encoder": 4.0, "part-of-speech tagger": 1.0}
    flops = {"cpu-fp32": 1e10, "cpu-bf16": 1e9}  # the encoder in fp32, the victim in bf16
    log("attack/d/none/base/seed1/a2t/shard0.log", wall=12.0, work=10.0, model=2.0, parts=parts, flops=flops, peak=peak)
    costs = _job_costs()
    records = costs.job_records(tmp_path)
    rows = {row["rule"]: row for row in costs.summarize(records)}
    assert set(rows) == {"attack:pwws", "attack:a2t", "gather_attack"}
    attack = rows["attack:pwws"]
    assert attack["jobs"] == 2 and attack["job_seconds"] == 24.0 and attack["share_of_run"] == pytest.approx(24 / 39)
    assert attack["startup_share"] == pytest.approx(4 / 24) and attack["model_share_of_work"] == pytest.approx(0.7)
    assert attack["of_fp32_peak"] == pytest.approx(0.4) and attack["of_bf16_peak"] == pytest.approx(4.0)
    assert attack["floor_job_seconds"] == pytest.approx(8.0) and attack["part_shares"] == {}
    assert rows["gather_attack"]["of_fp32_peak"] is None and rows["gather_attack"]["floor_job_seconds"] == 0
    a2t = rows["attack:a2t"]
    # each precision's FLOPs at that precision's peak: 1e10 / 1e10 + 1e9 / 1e9
    assert a2t["floor_job_seconds"] == pytest.approx(2.0)
    assert a2t["part_shares"] == pytest.approx({"sentence encoder": 0.4, "part-of-speech tagger": 0.1})
    table = costs.markdown(costs.summarize(records), records, cores=2)
    assert "10 job-seconds at the jobs' measured peak, 0.1 min on 2 cores" in table
    assert "| `attack:a2t` | 10 | 20 % | 10 % | 40 % | 30 % |" in table  # work, victim, tagger, encoder, rest


def test_fine_tuning_costs_per_method_feed_the_priorities(tmp_path):
    """finetune's jobs are a row per method (a2t's, the longest, apart from base's), and the CSV job_costs.py writes
    is what advlm.priorities reads."""
    from advlm import priorities

    for method, seed, wall in (("base", 1, 100.0), ("a2t", 1, 600.0), ("a2t", 2, 700.0)):
        path = tmp_path / "logs" / "finetune" / "d" / "none" / method / f"seed{seed}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"startup": 1.0, "imports": 1.0, "load": 0.0, "model": 0.0, "flops": {}, "wall": wall, "work": wall}
        path.write_text(f"job time: {json.dumps(record)}\n")
    costs = _job_costs()
    rows = costs.summarize(costs.job_records(tmp_path))
    assert [(row["rule"], row["jobs"], row["seconds_per_job"]) for row in rows] == [
        ("finetune:a2t", 2, 650.0),
        ("finetune:base", 1, 100.0),
    ]
    (tmp_path / "costs.csv").write_text(costs.costs_csv(rows, "a test run\non no machine"))
    assert priorities.read_costs(tmp_path / "costs.csv") == {"finetune:a2t": 650.0, "finetune:base": 100.0}


@pytest.mark.parametrize("script", ["evaluate", "finetune", "pretrain_mlm", "extract_activations", "gather_attack"])
def test_jobs_that_do_not_attack_do_not_import_textattack(script):
    """TextAttack's import (with flair's, which it pulls) costs about 16 s of a job's start on this machine: only
    the jobs that attack pay it (finetune's a2t imports it inside the method, when it attacks)."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('job', 'workflow_scripts/{script}.py')\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(name for name in ('textattack', 'flair') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_a_job_that_never_runs_torch_does_not_import_it():
    """Gathering, tables and data preparation take a few seconds; importing torch would add 2-4 s to each."""
    code = (
        "import sys\n"
        "from advlm import runtime\n"
        "runtime.setup(1, 3, uses_torch=False)\n"
        "record = runtime.provenance(3)\n"
        "print('torch' in sys.modules, record['threads'], record['torch_threads'], record['device'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "1", "None", "None"], result.stdout + result.stderr
