#!/usr/bin/env bash
# start-slurm.sh - install, configure and start a REAL single-node SLURM cluster on loopback (Debian 12
# "bookworm": slurm-wlm 22.05, munge, slurmdbd + MariaDB), without systemd. tests/test_slurm.py runs the
# workflow through profiles/slurm on it; adapted from shared/research/slurm-local/start-slurm.sh.
#
# Usage (as root):
#   tests/slurm/start-slurm.sh [--no-accounting] [--cgroup] [--no-install]
#
#   default          slurmctld + slurmd + munge + slurmdbd + MariaDB, so that `sacct` works (the tests check
#                    every job with it). An account "ci" (SLURM_CI_ACCOUNT) is created and root (+ $SUDO_USER,
#                    + $SLURM_CI_USERS) are added to it, as their default account.
#   --no-accounting  no slurmdbd/MariaDB (AccountingStorageType=accounting_storage/none): `sacct` then fails
#                    with "Slurm accounting storage is disabled"; only `--slurm-status-command squeue` works.
#   --cgroup         proctrack/cgroup + task/cgroup (memory limits enforced). Needs a writable cgroup v1
#                    hierarchy; the default (linuxproc/none) needs no cgroups at all.
#   --no-install     never run apt-get (fail if the packages are missing).
#
# Packages: whichever of slurmctld slurmd slurm-client munge (+ slurmdbd mariadb-server) are missing are
# installed with apt-get --no-install-recommends (apt-get update first if the install fails). Service starts
# by the packages' postinst scripts are blocked during the install (policy-rc.d): this script starts the
# daemons itself, with its own configuration.
#
# Environment: SLURM_PARTITION (default "cpu gpu": the partitions profiles/slurm names, the first is the
#              default), SLURM_NODE_CPUS (default 8: advertise more CPUs than nproc, so that the profile's
#              4-CPU GPU jobs fit; SlurmdParameters=config_overrides), SLURM_FAKE_GPUS (default 4: GRES gpu
#              on device files that are /dev/null, nothing is bound to them), SLURM_MINJOBAGE (default 600),
#              SLURM_CRED_EXPIRE (default 20: seconds a requeued job waits),
#              SLURM_CI_ACCOUNT (ci), SLURM_CI_USERS, SLURM_DB_PASSWORD.
# Teardown: tests/slurm/stop-slurm.sh (stops only the daemons whose PIDs this script recorded).
set -euo pipefail

ACCOUNTING=1
CGROUP=0
INSTALL=1
for a in "$@"; do
    case "$a" in
        --no-accounting) ACCOUNTING=0 ;;
        --cgroup) CGROUP=1 ;;
        --no-install) INSTALL=0 ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "unknown option: $a" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "start-slurm.sh must run as root" >&2; exit 1; }

STATE_DIR=/run/slurm-local            # PIDs of the daemons we start
PIDS="$STATE_DIR/pids"
ACCOUNT=${SLURM_CI_ACCOUNT:-ci}
PARTITION=${SLURM_PARTITION:-cpu gpu}
MINJOBAGE=${SLURM_MINJOBAGE:-600}
CRED_EXPIRE=${SLURM_CRED_EXPIRE:-20}
DBPASS=${SLURM_DB_PASSWORD:-slurmci}
T0=$(date +%s.%N)

log() { printf '[start-slurm %6.1fs] %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$*"; }
die() { echo "start-slurm: ERROR: $*" >&2; exit 1; }

# wait_for <seconds> <description> <command...>
wait_for() {
    local secs=$1 what=$2; shift 2
    local end=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || die "timed out after ${secs}s waiting for: $what"
        sleep 0.5
    done
}

record_pid() {  # record_pid <name> <pidfile>
    local name=$1 pf=$2
    wait_for 20 "pid file $pf" test -s "$pf"
    local pid; pid=$(cat "$pf")
    kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) is not running; see its log"
    echo "$name $pid" >> "$PIDS"
    log "$name running, pid $pid"
}

already_running() {  # already_running <pidfile> <comm>
    local pf=$1 comm=$2 pid
    [ -s "$pf" ] || return 1
    pid=$(cat "$pf")
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$comm" ]
}

for pair in /run/munge/munged.pid:munged /run/slurmctld.pid:slurmctld /run/slurmd.pid:slurmd \
            /run/slurmdbd.pid:slurmdbd /run/mysqld/mysqld.pid:mariadbd; do
    if already_running "${pair%%:*}" "${pair##*:}"; then
        die "${pair##*:} already running (pid $(cat "${pair%%:*}")); run stop-slurm.sh first"
    fi
done

# ---------------------------------------------------------------- 1. install
PKGS="slurmctld slurmd slurm-client munge"
[ "$ACCOUNTING" = 1 ] && PKGS="$PKGS slurmdbd mariadb-server"
MISSING=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || MISSING="$MISSING $p"
done
if [ -n "$MISSING" ]; then
    [ "$INSTALL" = 1 ] || die "packages missing:$MISSING (and --no-install given)"
    command -v apt-get >/dev/null || die "packages missing:$MISSING and no apt-get to install them"
    log "apt-get install$MISSING"
    export DEBIAN_FRONTEND=noninteractive
    APTLOG="${TMPDIR:-/tmp}/start-slurm-apt.log"
    # the packages' postinst would start munged/slurmctld/mariadb with their stock configuration (or try
    # to, without systemd); policy-rc.d exit 101 forbids it. Only ours is removed afterwards.
    OWN_POLICY=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; OWN_POLICY=1
    fi
    # --no-install-recommends: skips slurm-wlm-plugins(-dev) (hdf5, elasticsearch, influxdb, ...);
    # everything used here is in slurm-wlm-basic-plugins.
    if ! apt-get install -y -q --no-install-recommends $MISSING >"$APTLOG" 2>&1; then
        log "install failed, running apt-get update and retrying"
        apt-get update -q >>"$APTLOG" 2>&1
        apt-get install -y -q --no-install-recommends $MISSING >>"$APTLOG" 2>&1 \
            || { [ "$OWN_POLICY" = 0 ] || rm -f /usr/sbin/policy-rc.d; tail -20 "$APTLOG"; die "apt-get install failed"; }
    fi
    [ "$OWN_POLICY" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi
log "packages: $(dpkg-query -W -f='${Package} ${Version}, ' slurmctld slurmd munge 2>/dev/null)"
command -v slurmctld >/dev/null || die "slurmctld not installed"

mkdir -p "$STATE_DIR"; : > "$PIDS"

# ------------------------------------------------------------- 2. host facts
HOST=$(hostname -s)
CPUS=${SLURM_NODE_CPUS:-8}
FAKE_GPUS=${SLURM_FAKE_GPUS:-4}
MEM_TOTAL=$(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo)   # MiB, like `free -m`
REALMEM=$(( MEM_TOTAL * 90 / 100 ))     # a bit under total, else node -> DRAIN
# Daemons talk over 127.0.0.1 (NodeAddr / SlurmctldHost addr), so resolving the
# hostname is not required (tested); only munged warns "Failed to lookup origin".
# Make it resolvable anyway (some containers do not have it in /etc/hosts).
if ! getent hosts "$HOST" >/dev/null; then
    [ -z "$(tail -c1 /etc/hosts)" ] || echo >> /etc/hosts
    echo "127.0.0.1 $HOST" >> /etc/hosts
    log "added '127.0.0.1 $HOST' to /etc/hosts"
fi

# ------------------------------------------------------------ 3. slurm.conf
if [ "$CGROUP" = 1 ]; then
    PROCTRACK=proctrack/cgroup; TASK=task/cgroup
    cat > /etc/slurm/cgroup.conf <<EOF
CgroupPlugin=autodetect
ConstrainCores=yes
ConstrainRAMSpace=yes
EOF
else
    PROCTRACK=proctrack/linuxproc; TASK=task/none
    rm -f /etc/slurm/cgroup.conf
fi
if [ "$ACCOUNTING" = 1 ]; then
    ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
else
    ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

EXTRA_CONF=""
NODE_GRES=""
[ "$CPUS" -gt "$(nproc)" ] && EXTRA_CONF="SlurmdParameters=config_overrides"
if [ "$FAKE_GPUS" -gt 0 ]; then
    EXTRA_CONF="$EXTRA_CONF
GresTypes=gpu
AccountingStorageTRES=gres/gpu"
    NODE_GRES="Gres=gpu:${FAKE_GPUS}"
    # a count-only gpu line is reported as 0 GPUs by slurmd 22.05 (node INVAL); give each fake GPU
    # a device file: character devices with /dev/null's numbers, nothing is bound to them.
    mkdir -p "$STATE_DIR/fakegpu"; : > /etc/slurm/gres.conf
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
        [ -e "$STATE_DIR/fakegpu/nvidia$i" ] || mknod "$STATE_DIR/fakegpu/nvidia$i" c 1 3
        echo "NodeName=${HOST} Name=gpu File=$STATE_DIR/fakegpu/nvidia$i" >> /etc/slurm/gres.conf
    done
else
    rm -f /etc/slurm/gres.conf
fi
PARTITION_LINES=""; DEFAULT_P=YES
for p in $PARTITION; do
    PARTITION_LINES="${PARTITION_LINES}PartitionName=${p} Nodes=ALL Default=${DEFAULT_P} MaxTime=INFINITE State=UP
"
    DEFAULT_P=NO
done
mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
chown slurm:slurm /var/lib/slurm /var/lib/slurm/slurmctld /var/log/slurm
cat > /etc/slurm/slurm.conf <<EOF
# generated by start-slurm.sh - single node on loopback
ClusterName=localcluster
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=6817
SlurmdPort=6818
MailProg=/bin/true
MpiDefault=none
ProctrackType=${PROCTRACK}
TaskPlugin=${TASK}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without DefMemPerCPU a job with no --mem gets the whole node's memory
DefMemPerCPU=500
SchedulerType=sched/backfill
${ACCT}
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
ReturnToService=2
# keep finished jobs visible to squeue for 10 min (plugin's squeue mode needs >= 120 s)
MinJobAge=${MINJOBAGE}
KillWait=5
# sacct shows each job's --comment (the plugin writes rule_<rule>_wildcards_<values> there): the tests map
# jobs to rules with it
AccountingStoreFlags=job_comment
# a job requeued after a node failure waits cred_expire seconds before it may start again: 120 s by
# default, shortened so that the node-failure test stays short
AuthInfo=cred_expire=${CRED_EXPIRE}
${EXTRA_CONF}
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${REALMEM} ${NODE_GRES} State=UNKNOWN
${PARTITION_LINES}
EOF
log "wrote /etc/slurm/slurm.conf (node $HOST, CPUs=$CPUS, GPUs=$FAKE_GPUS, partitions: $PARTITION, RealMemory=$REALMEM, $PROCTRACK, $TASK, accounting=$ACCOUNTING)"

# ---------------------------------------------------------------- 4. munge
if [ ! -s /etc/munge/munge.key ]; then            # the munge postinst normally creates it
    if [ -x /usr/sbin/mungekey ]; then /usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
fi
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge; chmod 0755 /run/munge
rm -f /run/munge/munged.pid
runuser -u munge -- /usr/sbin/munged          # daemonizes, writes /run/munge/munged.pid
record_pid munged /run/munge/munged.pid
wait_for 10 "munge round trip" sh -c 'munge -n | unmunge'

# ------------------------------------------------- 5. MariaDB + slurmdbd
if [ "$ACCOUNTING" = 1 ]; then
    mkdir -p /run/mysqld; chown mysql:root /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    rm -f /run/mysqld/mysqld.pid
    setsid nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
        >/var/log/slurm/mariadbd-stdout.log 2>&1 < /dev/null &
    wait_for 60 "mariadbd ping" mariadb-admin ping
    record_pid mariadbd /run/mysqld/mysqld.pid
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
                CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '${DBPASS}';
                ALTER USER 'slurm'@'localhost' IDENTIFIED BY '${DBPASS}';
                GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=${DBPASS}
EOF
    chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 600 /etc/slurm/slurmdbd.conf
    rm -f /run/slurmdbd.pid
    /usr/sbin/slurmdbd                       # daemonizes
    record_pid slurmdbd /run/slurmdbd.pid
    wait_for 60 "slurmdbd answering sacctmgr" sacctmgr -n list cluster
fi

# ------------------------------------------------------ 6. slurmctld, slurmd
rm -f /run/slurmctld.pid /run/slurmd.pid
/usr/sbin/slurmctld                          # daemonizes, drops to SlurmUser
record_pid slurmctld /run/slurmctld.pid
wait_for 60 "slurmctld ping" sh -c 'scontrol ping | grep -q UP'
/usr/sbin/slurmd                             # runs as root, daemonizes
record_pid slurmd /run/slurmd.pid

node_idle() { sinfo -h -N -n "$HOST" -o %t | grep -qx 'idle'; }
wait_for 60 "node $HOST idle" node_idle
log "node $HOST is idle"

# ------------------------------------------------------------ 7. accounts
if [ "$ACCOUNTING" = 1 ]; then
    # slurmctld registers the cluster itself; "add cluster" is just belt and braces
    sacctmgr -i add cluster localcluster >/dev/null 2>&1 || true
    sacctmgr -i add account "$ACCOUNT" Description=ci Organization=ci >/dev/null 2>&1 || true
    for u in root ${SUDO_USER:-} ${SLURM_CI_USERS:-}; do
        id "$u" >/dev/null 2>&1 || continue
        sacctmgr -i add user "$u" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true
    done
    log "accounting: account '$ACCOUNT' -> users: $(sacctmgr -n -P list assoc account="$ACCOUNT" format=user | grep -v '^$' | tr '\n' ' ')"
fi

# ------------------------------------------------------------- 8. status
log "cluster is up"
sinfo
scontrol show node "$HOST" | grep -E 'State=|CPUTot|RealMemory'
if [ "$ACCOUNTING" = 1 ]; then
    echo "snakemake: --executor slurm --default-resources slurm_partition=${PARTITION%% *} slurm_account=$ACCOUNT"
else
    echo "snakemake: --executor slurm --default-resources slurm_partition=${PARTITION%% *} --slurm-status-command squeue --slurm-no-account"
fi
echo "PIDs recorded in $PIDS:"; cat "$PIDS"
