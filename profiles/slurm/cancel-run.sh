#!/usr/bin/env bash
# cancel-run.sh - the first step of restarting a `snakemake --workflow-profile profiles/slurm` run whose head
# (the snakemake process on the login node) was killed or crashed: cancel the SLURM jobs it left behind. They
# would otherwise keep running, and the restarted run would submit the same jobs again beside them.
#
# Usage, in the directory the run worked in (its .snakemake/ is here):
#   profiles/slurm/cancel-run.sh [RUN_ID]
#   snakemake --workflow-profile profiles/slurm --unlock
#   snakemake --workflow-profile profiles/slurm            # the same targets and options as before
# RUN_ID is the line "SLURM run ID: ..." that the run printed at its start (every job of the run carries it as
# its job name); without it, the newest .snakemake/log/*.snakemake.log that holds one gives it.
set -euo pipefail

run_id=${1:-}
if [ -z "$run_id" ]; then
    # newest first; --unlock and dry runs write logs without a run ID
    log=$(ls -t .snakemake/log/*.snakemake.log 2>/dev/null | while read -r f; do
              grep -q '^SLURM run ID: ' "$f" && { echo "$f"; break; }; done || true)
    [ -n "$log" ] || { echo "cancel-run: no .snakemake/log/*.snakemake.log with a SLURM run ID here; give the run ID" >&2; exit 2; }
    run_id=$(sed -n 's/^SLURM run ID: //p' "$log" | head -1)
    echo "cancel-run: run ID $run_id from $log"
fi

active() { squeue -h --name "$run_id" -u "$(id -un)" -t PD,CF,R,CG,S,RQ,RS -o %i; }
jobs=$(active | tr '\n' ' ')
if [ -z "${jobs// /}" ]; then
    echo "cancel-run: no job of run $run_id is queued or running"
    exit 0
fi
echo "cancel-run: cancelling jobs $jobs"
scancel --name "$run_id" -u "$(id -un)"
# wait until they have left the nodes: a job that ends after the restart has looked at its outputs could still
# overwrite them
for _ in $(seq 120); do
    [ -z "$(active)" ] && { echo "cancel-run: done; now --unlock and rerun"; exit 0; }
    sleep 1
done
echo "cancel-run: jobs still listed after 120 s: $(active | tr '\n' ' ')" >&2
exit 1
