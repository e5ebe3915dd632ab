#!/usr/bin/env bash
# Service control for one testbed host, as its agent runs it (agent config:
# service: {kind: command, start: [this, start, HOSTDIR], stop: [this, stop, HOSTDIR]}).
#
#   testbed-service.sh start|stop HOSTDIR
#
# The testbed hosts have no systemd and share one file system, so "the docker service" of
# a host is this script: it runs the dockerd of HOSTDIR's install root (`current/bin`, the
# tree the agent's binary recipe flips) inside the host's network and UTS namespaces and
# in the testbed's cgroup subtree (so the harness's cleanup finds it after a crash), with
# the same daemon options as test/support/testbed/hosts.ts. `start` returns once the Engine
# API answers, or fails with the log tail when dockerd exits first (like systemd's
# Type=notify); `stop` is SIGTERM, then SIGKILL after 60 s, and waits for containerd.
# HOSTDIR/service.env (written by the test) holds the host's coordinates, and TCP_HOST
# when the Engine API is also served on TCP (its TLS settings are in daemon.json).
set -euo pipefail
action="${1:?start|stop}"
dir="${2:?HOSTDIR}"
# shellcheck source=/dev/null
source "$dir/service.env"
pidfile="$dir/docker.pid"

running_pid() {
  local pid
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/stat" 2>/dev/null | awk '{print $3}')" != Z ]] && echo "$pid"
  return 0
}

ping_ok() { [[ "$(curl -s --max-time 2 --unix-socket "$SOCKET" http://engine/_ping 2>/dev/null || true)" == OK ]]; }

case "$action" in
start)
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then echo "dockerd already runs (pid $pid)"; exit 0; fi
  rm -f "$pidfile"
  bin="$INSTALL_ROOT/current/bin"
  mkdir -p "$(dirname "$CGROUP_PROCS")"
  echo "starting $(readlink -f "$bin/dockerd") on $NETNS" >>"$dir/dockerd.log"
  from="$(stat -c %s "$dir/dockerd.log")"
  setsid /bin/sh -c 'echo $$ > "$1" && shift && exec "$@"' sh "$CGROUP_PROCS" \
    nsenter "--net=/run/netns/$NETNS" "--uts=$UTS_FILE" -- \
    env -i "PATH=$bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$dir" LANG=C.UTF-8 \
    "$bin/dockerd" \
    "--data-root=$DATA_ROOT" "--exec-root=$dir/exec" "--pidfile=$pidfile" "--host=unix://$SOCKET" ${TCP_HOST:+"--host=$TCP_HOST"} \
    "--config-file=$dir/daemon.json" --storage-driver=overlay2 "--bip=$BIP" \
    --default-address-pool=base=10.200.192.0/18,size=24 "--cgroup-parent=$CGROUP_PARENT" \
    --exec-opt=native.cgroupdriver=cgroupfs \
    </dev/null >>"$dir/dockerd.log" 2>&1 &
  child=$!
  for _ in $(seq 1 600); do
    if ! kill -0 "$child" 2>/dev/null; then
      echo "dockerd exited during its start; the end of $dir/dockerd.log:"
      tail -c +"$((from + 1))" "$dir/dockerd.log" | tail -n 12
      exit 1
    fi
    if ping_ok; then echo "dockerd (pid $child) answers on $SOCKET"; exit 0; fi
    sleep 0.1
  done
  echo "dockerd (pid $child) did not answer within 60 s"
  exit 1
  ;;
stop)
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then echo "dockerd is not running"; exit 0; fi
  ctr="$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null || true)"
  kill -TERM "$pid"
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "dockerd ignored SIGTERM for 60 s; killing it"; kill -KILL "$pid" || true; fi
  if [[ -n "$ctr" ]]; then
    for _ in $(seq 1 100); do kill -0 "$ctr" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$ctr" 2>/dev/null && kill -KILL "$ctr" || true
  fi
  echo "dockerd (pid $pid) stopped"
  ;;
*)
  echo "usage: $0 start|stop HOSTDIR" >&2
  exit 2
  ;;
esac
