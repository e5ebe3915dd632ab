#!/usr/bin/env bash
# Removes what an end-to-end testbed (test/support/testbed/hosts.ts) created, from the records
# in its state file — also after the creating process crashed or was killed.
#
#   scripts/testbed/cleanup.sh PREFIX     clean the testbed recorded under PREFIX
#   scripts/testbed/cleanup.sh --stale    clean every testbed whose creating process is gone
#   scripts/testbed/cleanup.sh --list     show recorded testbeds and whether their owner lives
#
# The state file (/run/upshift-testbed/PREFIX/state, one record per line) is written by the
# harness *before* each resource is created, so whatever exists is recorded:
#   owner PID STARTTIME    the creating process
#   root DIR               temporary directory with every host's files
#   cgroup PATH            cgroup subtree (in every hierarchy) holding all the testbed's processes
#   slot N                 claimed 10.200.N.0/24 (file /run/upshift-testbed/slots/N)
#   bridge IFNAME          bridge in the root network namespace
#   netns NAME             a host's network namespace
#   veth IFNAME            root side of a host's veth pair
#   mount PATH             a bind mount (persistent UTS namespace)
#   pid PID STARTTIME      a dockerd the harness started
#   dir PATH               a shared run directory that did not exist before the testbed
#                          (/run/docker, /run/containerd: engines create them on first start)
#
# Processes are found by PID only: the recorded dockerd PIDs (checked against their start
# time so a reused PID is never hit) and the PIDs the kernel lists in the testbed's own
# cgroup subtree (containerd, shims, containers, gVisor sandboxes). Never by name.
# Every step runs even if an earlier one failed; the exit status says whether all worked.
set -uo pipefail
# Runs from exit hooks whose stderr may be a closed pipe (`… | head`): a failed log write
# must not kill the cleanup halfway.
trap '' PIPE

STATE_ROOT="${UPSHIFT_TESTBED_RUN:-/run/upshift-testbed}"
CGROUP_ROOT="/sys/fs/cgroup"
failures=0

log() { printf '[cleanup] %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; failures=$((failures + 1)); }

starttime() { # PID -> field 22 of /proc/PID/stat, empty if the process is gone
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $stat
  # A zombie is gone for our purposes: it holds nothing and its parent will reap it.
  [[ "${1:-}" == Z || "${1:-}" == X ]] && return 0
  printf '%s' "${20:-}"
}

owner_alive() { # STATEFILE -> 0 when the recorded owner process still runs
  local pid st
  read -r _ pid st < <(grep -m1 '^owner ' "$1") || return 1
  [[ -n "${pid:-}" && "$(starttime "$pid")" == "${st:-x}" ]]
}

# PIDs listed in the cgroup subtree of one hierarchy.
cgroup_pids() { # HIERARCHY SUBTREE
  local d="$1/$2"
  [[ -d "$d" ]] || return 0
  find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
}

# Hierarchies to search and clean: every mounted cgroup v1 controller directory, plus the
# unified root itself (cgroup v2 or the hybrid "unified" mount).
hierarchies() {
  local h
  for h in "$CGROUP_ROOT" "$CGROUP_ROOT"/*; do
    [[ -d "$h" && -e "$h/cgroup.procs" ]] && printf '%s\n' "$h"
  done
}

clean_one() {
  local prefix="$1"
  local dir="$STATE_ROOT/$prefix"
  local state="$dir/state"
  if [[ ! -f "$state" ]]; then
    log "$prefix: nothing recorded ($state missing)"
    return 0
  fi
  log "$prefix: cleaning"
  local root="" cgroup="" slot="" bridge=""
  local -a netns=() veths=() mounts=() pids=() dirs=() under=()
  local kind a b
  while read -r kind a b; do
    case "$kind" in
      root) root="$a" ;;
      cgroup) cgroup="$a" ;;
      slot) slot="$a" ;;
      bridge) bridge="$a" ;;
      netns) netns+=("$a") ;;
      veth) veths+=("$a") ;;
      mount) mounts+=("$a") ;;
      pid) pids+=("$a:$b") ;;
      dir) dirs+=("$a") ;;
    esac
  done <"$state"

  # Shim sockets live outside the testbed's directories (/run/containerd/s/<hash>); they
  # are bound inside the hosts' network namespaces, so those namespaces' socket tables
  # name exactly ours. Collected before the processes die.
  local -a sockets=()
  local ns s
  for ns in "${netns[@]}"; do
    [[ -e "/run/netns/$ns" ]] || continue
    while read -r s; do sockets+=("$s"); done < <(
      nsenter --net="/run/netns/$ns" cat /proc/net/unix 2>/dev/null |
        awk 'NR > 1 && $8 ~ "^/run/containerd/s/" { print $8 }' | sort -u
    )
  done

  # 1. Processes: recorded dockerds, then everything in the cgroup subtree, until empty.
  local entry pid st i
  for entry in "${pids[@]}"; do
    pid="${entry%%:*}"
    st="${entry#*:}"
    if [[ -n "$pid" && "$(starttime "$pid")" == "$st" ]]; then
      kill -KILL "$pid" 2>/dev/null && log "$prefix: killed dockerd $pid"
    fi
  done
  if [[ -n "$cgroup" ]]; then
    local h i left
    for i in $(seq 1 100); do
      left=0
      while read -r h; do
        for pid in $(cgroup_pids "$h" "$cgroup"); do
          left=1
          kill -KILL "$pid" 2>/dev/null
        done
      done < <(hierarchies)
      ((left)) || break
      sleep 0.1
    done
    ((left)) && fail "$prefix: processes remain in cgroup $cgroup"
  fi

  # 2. Mounts: the UTS bind mounts and anything under the root (overlay layers, container
  #    network namespaces, shm), deepest first.
  local m
  for m in "${mounts[@]}"; do
    if findmnt -rn --mountpoint "$m" >/dev/null 2>&1; then
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || fail "$prefix: umount $m"
    fi
  done
  if [[ -n "$root" ]]; then
    local pass
    for pass in 1 2 3; do
      mapfile -t under < <(awk -v r="$root/" 'index($5 "/", r) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
      ((${#under[@]})) || break
      for m in "${under[@]}"; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
      done
    done
    if awk -v r="$root/" 'index($5 "/", r) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
      fail "$prefix: mounts remain under $root"
    fi
  fi

  # 3. Network: namespaces (their veth ends and container interfaces go with them), the
  #    root-side veths if any survived, the bridge.
  for ns in "${netns[@]}"; do
    if [[ -e "/run/netns/$ns" ]]; then
      ip netns delete "$ns" 2>/dev/null || fail "$prefix: ip netns delete $ns"
    fi
  done
  # The kernel destroys a deleted namespace's interfaces asynchronously: a veth may vanish
  # between the check and the delete, so only one that is still there afterwards failed.
  local v
  for v in "${veths[@]}" "$bridge"; do
    [[ -n "$v" ]] || continue
    for i in 1 2 3 4 5 6 7 8 9 10; do
      ip link show dev "$v" >/dev/null 2>&1 || break
      ip link delete dev "$v" 2>/dev/null || sleep 0.2
    done
    ip link show dev "$v" >/dev/null 2>&1 && fail "$prefix: ip link delete $v"
  done

  # 4. Cgroups: the subtree in every hierarchy (runc created container cgroups in all of
  #    them), leaves first; then the shared parent if it became empty.
  if [[ -n "$cgroup" ]]; then
    while read -r h; do
      [[ -d "$h/$cgroup" ]] || continue
      find "$h/$cgroup" -depth -type d -exec rmdir {} \; 2>/dev/null
      [[ -d "$h/$cgroup" ]] && fail "$prefix: cannot remove cgroup $h/$cgroup"
      rmdir "$h/${cgroup%%/*}" 2>/dev/null || true
    done < <(hierarchies)
  fi

  # 5. Files: shim sockets, the root (refusing anything that is not a testbed root, and
  #    never crossing into another filesystem), the slot claim, the state itself.
  for s in "${sockets[@]}"; do rm -f -- "$s"; done
  if [[ -n "$root" && -d "$root" ]]; then
    if [[ "$(basename "$root")" == upshift-tb-"$prefix"-* ]]; then
      rm -rf --one-file-system -- "$root" || fail "$prefix: rm -rf $root"
    else
      fail "$prefix: refusing to remove unexpected root $root"
    fi
  fi
  if [[ -n "$slot" && "$(cat "$STATE_ROOT/slots/$slot" 2>/dev/null)" == "$prefix" ]]; then
    rm -f "$STATE_ROOT/slots/$slot"
  fi
  # Shared run directories the engines created: removed only when empty and no other
  # testbed is recorded (another one's engines may be about to use them).
  local others
  others="$(find "$STATE_ROOT" -mindepth 2 -maxdepth 2 -name state ! -path "$state" -print -quit 2>/dev/null)"
  if [[ -z "$others" ]]; then
    for m in "${dirs[@]}"; do rmdir -- "$m" 2>/dev/null || true; done
  fi
  if ((failures == 0)); then
    rm -rf -- "$dir"
    log "$prefix: clean"
  else
    log "$prefix: kept $state because $failures step(s) failed; run again"
  fi
}

case "${1:-}" in
  --stale)
    for state in "$STATE_ROOT"/*/state; do
      [[ -f "$state" ]] || continue
      owner_alive "$state" && continue
      clean_one "$(basename "$(dirname "$state")")"
    done
    ;;
  --list)
    for state in "$STATE_ROOT"/*/state; do
      [[ -f "$state" ]] || continue
      p="$(basename "$(dirname "$state")")"
      if owner_alive "$state"; then echo "$p live"; else echo "$p stale"; fi
    done
    ;;
  "" | -h | --help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
  *)
    [[ "$1" =~ ^[a-z0-9]{1,8}$ ]] || { log "bad prefix: $1"; exit 2; }
    clean_one "$1"
    ;;
esac
((failures == 0))
