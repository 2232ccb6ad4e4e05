#!/usr/bin/env bash
# Install and start a single-node SLURM cluster on this host, for tests/test_slurm.py.
#
# Run as root on Debian (12+). Idempotent: a second run keeps what is installed and
# running. The node is CPU-only (no GRES) and has no accounting database: job status
# comes from squeue (finished jobs stay listed for MinJobAge seconds) and every job
# that ends is appended to the job completion log $JOBCOMP_LOG.
#
# The executor plugin strips SLURM_CONF from the job environment, so the configuration
# lives where the SLURM commands look by default: /etc/slurm/slurm.conf.
set -euo pipefail

JOBCOMP_LOG=/var/log/slurm/jobcomp.log
CONF=/etc/slurm/slurm.conf

if [ "$(id -u)" -ne 0 ]; then
  echo "setup_slurm.sh: must run as root" >&2
  exit 1
fi

log() { echo "setup_slurm: $*" >&2; }

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  command -v munged >/dev/null || missing+=(munge)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

start_munge() {
  install -d -m 700 -o munge -g munge /etc/munge /var/lib/munge /var/log/munge
  # munge clients connect through this socket directory: it must be world-readable.
  install -d -m 755 -o munge -g munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating the munge key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
      munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
      sleep 0.2
    done
    echo "setup_slurm.sh: munged did not start" >&2
    exit 1
  fi
}

write_config() {
  local host cpus mem_kb mem_mb
  host=$(hostname -s)
  cpus=$(nproc)
  # Offer jobs four fifths of the memory: the rest is for the daemons, the login-node
  # work (Snakemake and its local rules) and the system. MemTotal, not MemAvailable,
  # so that a second run writes the same file and leaves the daemons running.
  mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  mem_mb=$((mem_kb * 4 / 5 / 1024))
  install -d -m 755 /etc/slurm /var/log/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd
  cat >"$CONF.new" <<EOF
# Single-node test cluster written by tests/slurm/setup_slurm.sh.
ClusterName=avrobust
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
DefMemPerCPU=1024
ReturnToService=2
# No accounting database: finished jobs stay visible to squeue for an hour, and the
# job completion log records every job that ran.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${JOBCOMP_LOG}
MinJobAge=3600
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -f "$CONF" ] && cmp -s "$CONF" "$CONF.new"; then
    rm "$CONF.new"
    return 1
  fi
  mv "$CONF.new" "$CONF"
  return 0
}

# running PIDFILE NAME: the pid file names a live process called NAME (not a stale pid
# from before a restart that another process now has).
running() { [ -f "$1" ] && [ "$(cat "/proc/$(cat "$1")/comm" 2>/dev/null)" = "$2" ]; }

stop_daemon() {
  if running "$1" "$2"; then
    kill "$(cat "$1")"
    for _ in $(seq 50); do
      running "$1" "$2" || return 0
      sleep 0.2
    done
  fi
}

start_slurm() {
  local changed=$1
  if [ "$changed" = yes ]; then
    stop_daemon /run/slurmd.pid slurmd
    stop_daemon /run/slurmctld.pid slurmctld
  fi
  if ! running /run/slurmctld.pid slurmctld; then
    # A controller that is not running has no run in progress: start from a clean state
    # (-c), not from jobs whose processes ended with the machine.
    log "starting slurmctld"
    /usr/sbin/slurmctld -c
  fi
  for _ in $(seq 100); do
    scontrol ping >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! running /run/slurmd.pid slurmd; then
    log "starting slurmd"
    /usr/sbin/slurmd -c
  fi
}

wait_for_node() {
  local host state
  host=$(hostname -s)
  for _ in $(seq 120); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
    case "$state" in
      idle | mix | alloc) log "node $host is $state"; return 0 ;;
      down* | drain* | drng*) scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  echo "setup_slurm.sh: node $host did not become idle (state: ${state:-none})" >&2
  tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
  exit 1
}

install_packages
start_munge
if write_config; then changed=yes; else changed=no; fi
start_slurm "$changed"
wait_for_node
touch "$JOBCOMP_LOG"
