#!/usr/bin/env bash
# stop-slurm.sh - tear down the cluster started by tests/slurm/start-slurm.sh (from shared/research/slurm-local).
# Cancels remaining jobs, then stops slurmd, slurmctld, slurmdbd, mariadbd and
# munged BY THE PIDS start-slurm.sh recorded in /run/slurm-local/pids (each PID is
# checked against the expected process name first; no pkill/killall).
# Usage (as root): ./stop-slurm.sh [--purge-state]
#   --purge-state  also delete slurmctld/slurmd state, job logs and the slurm DB,
#                  so that the next start begins with job id 1 and no history.
set -uo pipefail

PURGE=0
[ "${1:-}" = "--purge-state" ] && PURGE=1
PIDS=/run/slurm-local/pids
[ "$(id -u)" = 0 ] || { echo "stop-slurm.sh must run as root" >&2; exit 1; }
[ -s "$PIDS" ] || { echo "stop-slurm: no $PIDS - nothing started by start-slurm.sh"; exit 0; }

pid_of() { awk -v n="$1" '$1==n{print $2}' "$PIDS" | tail -1; }

stop_one() {  # stop_one <name> <pidfile-to-remove>
    local name=$1 pf=$2 pid
    pid=$(pid_of "$name")
    [ -n "$pid" ] || return 0
    if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ]; then
        kill -TERM "$pid"
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop-slurm: $name ($pid) ignored SIGTERM for 30s, sending SIGKILL"
            kill -KILL "$pid"
        fi
        echo "stop-slurm: stopped $name (pid $pid)"
    else
        echo "stop-slurm: $name (pid $pid) not running"
    fi
    rm -f "$pf"
}

# 1. cancel jobs that are still queued/running, wait for them to leave the node
if [ -n "$(pid_of slurmctld)" ] && command -v squeue >/dev/null; then
    jobs=$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        echo "stop-slurm: cancelling jobs $jobs"
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 30); do
            [ -z "$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null)" ] && break; sleep 0.5
        done
    fi
fi

# 2. daemons, reverse start order
stop_one slurmd    /run/slurmd.pid
stop_one slurmctld /run/slurmctld.pid
stop_one slurmdbd  /run/slurmdbd.pid
if [ "$PURGE" = 1 ] && [ -n "$(pid_of mariadbd)" ]; then
    mariadb -e 'DROP DATABASE IF EXISTS slurm_acct_db' && echo "stop-slurm: dropped slurm_acct_db"
fi
stop_one mariadbd  /run/mysqld/mysqld.pid
stop_one munged    /run/munge/munged.pid

# 3. leftovers of --cgroup mode (empty slurm cgroup directories)
for d in /sys/fs/cgroup/*/slurm_*; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
done

if [ "$PURGE" = 1 ]; then
    rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/*
    rm -f /var/log/slurm/jobcomp.log
    echo "stop-slurm: state purged"
fi
rm -f "$PIDS"
rm -rf /run/slurm-local/fakegpu    # fake GPU device nodes (start-slurm.sh SLURM_FAKE_GPUS)
echo "stop-slurm: done"
