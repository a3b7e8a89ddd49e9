#!/usr/bin/env bash
# A real one-node Slurm cluster on 127.0.0.1, for git-parallel's tests and benchmarks.
#
#   tests/slurm-cluster.sh up   [DIR]   install when missing, configure, start, wait for an idle node
#   tests/slurm-cluster.sh down [DIR]   stop the daemons (by the pids they wrote), keep DIR
#   tests/slurm-cluster.sh env  [DIR]   print `export SLURM_CONF=...` for a shell
#
# DIR (default $GIT_PARALLEL_SLURM_DIR or /tmp/git-parallel-slurm) holds everything: the
# configuration, munge's key and socket, state, logs and pid files. Nothing outside it is
# touched except the Debian packages. `up` on a cluster that is already up only waits for
# the node. No systemd: munged, slurmctld and slurmd are started by hand. Needs root.
set -euo pipefail

cmd=${1:-}
dir=${2:-${GIT_PARALLEL_SLURM_DIR:-/tmp/git-parallel-slurm}}
# Ports of our own, so a cluster already on this machine is left alone.
ctld_port=${GIT_PARALLEL_SLURM_PORT:-16817}
slurmd_port=$((ctld_port + 1))

die() { echo "slurm-cluster: $*" >&2; exit 1; }
say() { echo "slurm-cluster: $*" >&2; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
  local need=()
  command -v slurmctld >/dev/null || need+=(slurmctld)
  command -v slurmd >/dev/null || need+=(slurmd)
  command -v sbatch >/dev/null || need+=(slurm-client)
  command -v munged >/dev/null || need+=(munge)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    [ "$(id -u)" = 0 ] || die "the Slurm packages are missing and we are not root to install them"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
  fi
}

configure() {
  local host node_line cg proctrack
  host=$(hostname -s)
  mkdir -p "$dir"/{state,spool,log,munge,run}
  chmod 0755 "$dir/munge"
  if [ ! -s "$dir/munge.key" ]; then
    dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
  fi
  chmod 0400 "$dir/munge.key"
  # The node as slurmd sees it (CPUs, sockets, memory), addressed on loopback.
  node_line=$(slurmd -C | head -1 | sed -e "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/")
  # cgroup tracking kills double-forked daemons; only where cgroup v1 works here.
  proctrack=proctrack/linuxproc
  cg=""
  if [ "${GIT_PARALLEL_SLURM_PROCTRACK:-}" != linuxproc ] && [ -d /sys/fs/cgroup/freezer ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
    proctrack=proctrack/cgroup
    cg="CgroupPlugin=cgroup/v1"
  fi
  cat >"$dir/cgroup.conf" <<EOF
${cg:-CgroupPlugin=autodetect}
EOF
  cat >"$dir/slurm.conf" <<EOF
ClusterName=gptest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket.2
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=64
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
ProctrackType=$proctrack
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MinJobAge=3600
KillWait=5
ReturnToService=2
MpiDefault=none
$node_line State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF
}

node_state() {
  SLURM_CONF="$dir/slurm.conf" sinfo -h -N -o '%T' 2>/dev/null | head -1 || true
}

up() {
  install
  if ! alive "$dir/run/munged.pid" || ! alive "$dir/run/slurmctld.pid" || ! alive "$dir/run/slurmd.pid"; then
    down_quiet
    configure
    munged --force --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge.key" \
      --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
    slurmctld -f "$dir/slurm.conf"
    slurmd -f "$dir/slurm.conf"
  fi
  local i state
  for i in $(seq 1 300); do
    state=$(node_state)
    case "$state" in
      idle* | mixed* | allocated*)
        say "one-node cluster up in $dir (node $(hostname -s) $state); export SLURM_CONF=$dir/slurm.conf"
        return 0
        ;;
    esac
    sleep 0.2
  done
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  die "the node did not become idle within 60 s (state: ${state:-none})"
}

stop_pidfile() {
  local f=$1 pid i
  alive "$f" || { rm -f "$f"; return 0; }
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
}

down_quiet() {
  stop_pidfile "$dir/run/slurmd.pid"
  stop_pidfile "$dir/run/slurmctld.pid"
  stop_pidfile "$dir/run/munged.pid"
}

case "$cmd" in
  up) up ;;
  down) down_quiet; say "stopped the cluster in $dir" ;;
  env) echo "export SLURM_CONF=$dir/slurm.conf" ;;
  *) die "usage: $0 up|down|env [DIR]" ;;
esac
