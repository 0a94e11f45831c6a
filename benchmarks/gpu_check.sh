#!/usr/bin/env bash
# The prepared GPU check: one command, under 8 minutes, on a machine with one NVIDIA GPU, offline, with that
# machine's own torch and transformers (issue 11). Run from the repository root:
#
#     bash benchmarks/gpu_check.sh            # writes gpu_check/ (or $OUT when set)
#     DEVICE=cpu SKIP_STEPS=1 bash benchmarks/gpu_check.sh   # steps 2-3 on the CPU: checks the script itself
#
# 1. Step time of every training method relative to `base`, for a BERT-base-sized classifier (random weights,
#    random tokens: nothing to download) in bf16 autocast at length 128, batch 32 (goal: a method with K perturbed
#    passes at most 1.15 (K+1) base steps), and the base step's model FLOP utilization against the GPU's bf16
#    matrix-product peak measured in the same run (goal: at least 40 %). Needs only torch and transformers.
# 2. The tiny end-to-end DAG (tests/config/tiny.yaml, a tiny BERT built on the spot) with device: cuda, and
# 3. attack throughput per recipe (seconds per attacked example with the workflow's wrapper, on a model of step 2):
#    both need the project's other packages (snakemake, textattack, spaCy and their dependencies). On a machine
#    where `make setup` ran they are in .venv; elsewhere steps 2 and 3 say what is missing and are skipped.
#    (Carrying them as wheels does not fit the 64 MiB a device run may carry: snakemake alone needs sdist-only
#    packages, and textattack pulls datasets, pyarrow and flair.)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export PYTHONPATH=workflow_scripts${PYTHONPATH:+:$PYTHONPATH}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
started=$(date +%s)
say() { echo "[gpu_check $(($(date +%s) - started)) s] $*" | tee -a "$OUT/summary.txt"; }

"$PYTHON" - <<'EOF' | tee "$OUT/device.txt"
import torch, transformers
print(f"torch {torch.__version__}, transformers {transformers.__version__}, CUDA {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0))
EOF

if [ -z "${SKIP_STEPS:-}" ]; then
    say "1. method step times and MFU: BERT-base, bf16, batch 32 x 128 tokens"
    timeout 240 "$PYTHON" benchmarks/train_step.py --synthetic bert-base --device "$DEVICE" --precision bf16 \
        --batch-size 32 --max-length 128 --warmup 3 --steps 20 --methods base pgd freelb lds \
        > "$OUT/step_times.md" 2> "$OUT/step_times.log"
    say "   exit $?: $(grep -E 'model FLOP utilization' "$OUT/step_times.md")"
    grep -E '^\|' "$OUT/step_times.md" | tee -a "$OUT/summary.txt"
fi

if ! missing=$("$PYTHON" -c "
import importlib.util as u
print(' '.join(m for m in ('snakemake', 'textattack', 'spacy', 'nltk', 'sklearn', 'statsmodels') if not u.find_spec(m)))
") || [ -n "$missing" ]; then
    say "2-3. skipped: this Python lacks ${missing:-some project packages} (make setup installs them into .venv)"
    exit 0
fi

say "2. the tiny end-to-end DAG on $DEVICE"
work=$(mktemp -d)
"$PYTHON" - "$work" "$DEVICE" <<'EOF'
import sys
from pathlib import Path

sys.path.insert(0, "tests")
import yaml
from tiny_model import build_tiny_bert

work = Path(sys.argv[1])
tiny = build_tiny_bert(work / "tiny_bert")
overlay = {"device": sys.argv[2], "downloads_dir": str(Path.cwd() / "downloads")}  # the run is in another directory
overlay["model"] = {"name": str(tiny), "max_length": 32}
(work / "gpu.yaml").write_text(yaml.safe_dump(overlay))
EOF
timeout 300 "$PYTHON" -m snakemake --snakefile Snakefile --directory "$work" --workflow-profile none --cores 8 \
    --configfile tests/config/tiny.yaml "$work/gpu.yaml" > "$OUT/tiny_dag.log" 2>&1
say "   exit $?: $(grep -E 'steps \(100%\) done|Error' "$OUT/tiny_dag.log" | tail -1)"
"$PYTHON" benchmarks/job_costs.py "$work/results" > "$OUT/tiny_dag_costs.md" 2>&1 && cat "$OUT/tiny_dag_costs.md"

say "3. attack throughput per recipe (seconds per example, workflow wrapper, bf16)"
model=$(ls -d "$work"/results/models/*/none/base/seed*/model 2>/dev/null | head -1)
ADVLM_RESULTS="$work/results" timeout 120 "$PYTHON" benchmarks/attack_engine.py --skip-stock --n 20 --model "$model" \
    --time-attacks pwws,deepwordbug,a2t --out "$OUT/attacks.json" > "$OUT/attacks.log" 2>&1
say "   exit $?"
tail -n 8 "$OUT/attacks.log" | tee -a "$OUT/summary.txt"
say "done"
