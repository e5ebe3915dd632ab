#!/usr/bin/env bash
# Fetches the real Debian packages the end-to-end testbed upgrades between and unpacks
# each one into its own directory, so a namespace "host" can run the dockerd/containerd
# of either version side by side without anything being installed system-wide.
#
#   scripts/testbed/fetch-packages.sh            # fetch (if needed) and print the paths
#
# Cache: ${UPSHIFT_TESTBED_CACHE:-$HOME/.cache/upshift-testbed}
#   debs/                       the downloaded .deb files
#   root/<pkg>-<version>/       `dpkg-deb -x` of each package
#   engines/<engine>/bin/       symlinks composing one engine: dockerd, docker, containerd,
#                               shims, docker-proxy, docker-init and the Debian 12 runc
#   gvisor/<runsc>/bin/         runsc plus a `runsc-docker` wrapper for `--add-runtime`
#   manifest.json               what the TypeScript harness reads (test/support/testbed/hosts.ts)
#   apt/                        private apt lists/sources (never /etc/apt)
#
# Idempotent: a second run with a complete cache touches neither the network nor apt.
# Why a private apt configuration: the packages come from Debian 13 (trixie) and
# bookworm-backports, which the machine's own apt configuration does not carry, and the
# machine's configuration must not be changed. The archive address is read from the
# machine's sources at run time so that no address is ever written into the repository.
set -euo pipefail

CACHE="${UPSHIFT_TESTBED_CACHE:-$HOME/.cache/upshift-testbed}"
SYSTEM_SOURCES="/etc/apt/sources.list.d/debian.sources"
KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"
ARCH="$(dpkg --print-architecture)"
# Packages the harness itself needs on the machine: the Debian 12 Docker Engine (its runc,
# containerd, iptables and the 20.10 CLI come with it), busybox for the test image,
# iproute2/util-linux for namespaces and nsenter, btrfs-progs for snapshot tests.
SYSTEM_PACKAGES=(docker.io runc containerd busybox-static iproute2 util-linux btrfs-progs iptables)

log() { printf '[fetch-packages] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (it installs system packages with apt-get)"

mkdir -p "$CACHE"
# One fetcher at a time: two concurrent test runs would otherwise race on the same
# partially extracted directories.
exec 9>"$CACHE/.lock"
flock 9

# ---------------------------------------------------------------------------------------
# 1. System packages the harness relies on.
# ---------------------------------------------------------------------------------------
missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing system packages: ${missing[*]}"
  # Lists may be absent on a fresh machine; refresh them once, then install.
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# ---------------------------------------------------------------------------------------
# 2. What to fetch. Each line: package, suite, version prefix. The exact version is
#    resolved at run time (apt-cache madison) so a Debian rebuild (+bN) does not break
#    the script; the prefixes are the versions the tests are written against.
# ---------------------------------------------------------------------------------------
WANTED=(
  "docker.io trixie 26.1.5+dfsg1-9+deb13u1"
  "docker-cli trixie 26.1.5+dfsg1-9+deb13u1"
  "containerd trixie 1.7.24~ds1-6+deb13u1"
  "tini trixie 0.19.0"
  "runsc bookworm-backports 0.0~20240729"
  "docker.io bookworm 20.10.24+dfsg1"
  "containerd bookworm 1.6.20~ds1"
  "runc bookworm 1.1.5+ds1"
  "tini bookworm 0.19.0"
  "runsc bookworm 0.0~20221219"
)

APT_DIR="$CACHE/apt"
APT_OPTS=(
  -o "Dir::Etc::sourcelist=$APT_DIR/sources.list"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::State::status=$APT_DIR/status"
  -o "Dir::Cache=$APT_DIR/cache"
  -o "APT::Architecture=$ARCH"
  -o "APT::Get::List-Cleanup=0"
  # The cache lives in root's home, which apt's unprivileged "_apt" user cannot enter.
  -o "APT::Sandbox::User=root"
)
apt_ready=0

# Builds the private sources list from the machine's own archive address and refreshes
# the private lists. Called lazily: only when something is missing from the cache.
prepare_apt() {
  ((apt_ready)) && return 0
  [[ -r "$SYSTEM_SOURCES" ]] || die "$SYSTEM_SOURCES not found"
  # First URIs line whose stanza carries the main archive (not debian-security).
  local uri
  uri="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$SYSTEM_SOURCES")"
  [[ -n "$uri" ]] || die "no archive URI in $SYSTEM_SOURCES"
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  : >"$APT_DIR/status"
  {
    echo "deb [arch=$ARCH signed-by=$KEYRING] $uri trixie main"
    echo "deb [arch=$ARCH signed-by=$KEYRING] $uri bookworm main"
    echo "deb [arch=$ARCH signed-by=$KEYRING] $uri bookworm-backports main"
  } >"$APT_DIR/sources.list"
  # Lists older than a day are refreshed; fresh ones are reused (idempotent, quick).
  if [[ -z "$(find "$APT_DIR/lists" -maxdepth 1 -name '*_Packages' -mmin -1440 -print -quit 2>/dev/null)" ]]; then
    log "refreshing private apt lists (trixie, bookworm, bookworm-backports)"
    apt-get "${APT_OPTS[@]}" update -qq >&2
  fi
  apt_ready=1
}

# dpkg's file name for a version: the epoch colon is written as %3a.
deb_name() { printf '%s_%s_%s.deb' "$1" "${2//:/%3a}" "$3"; }

mkdir -p "$CACHE/debs" "$CACHE/root"
RESOLVED_FILE="$CACHE/resolved.txt"
touch "$RESOLVED_FILE"

# Every apt-cache/apt-get run with a private configuration rebuilds apt's package cache
# (seconds each), so versions are resolved with one `madison` for all packages and the
# files are fetched with one `download`.
declare -A VERSION # "pkg suite" -> exact version
declare -a unresolved=()
for line in "${WANTED[@]}"; do
  read -r pkg suite prefix <<<"$line"
  # Reuse the previous resolution when its tree is complete: no apt work at all then.
  ver="$(awk -v k="$pkg $suite" -v p="$prefix" '$1" "$2 == k && index($3, p) == 1 { v = $3 } END { print v }' "$RESOLVED_FILE")"
  if [[ -n "$ver" && -f "$CACHE/root/$pkg-$ver/.complete" ]]; then
    VERSION["$pkg $suite"]="$ver"
  else
    unresolved+=("$line")
  fi
done

if ((${#unresolved[@]})); then
  prepare_apt
  names=()
  for line in "${unresolved[@]}"; do read -r pkg _ _ <<<"$line"; names+=("$pkg"); done
  madison="$(apt-cache "${APT_OPTS[@]}" madison $(printf '%s\n' "${names[@]}" | sort -u))"
  for line in "${unresolved[@]}"; do
    read -r pkg suite prefix <<<"$line"
    # madison: " pkg | version | archive-uri suite/component arch Packages", newest first.
    ver="$(awk -F' [|] ' -v n="$pkg" -v s=" $suite/" -v p="$prefix" '
      { gsub(/^ +| +$/, "", $1); gsub(/^ +| +$/, "", $2) }
      $1 == n && index($3, s) && index($2, p) == 1 { print $2; exit }' <<<"$madison")"
    [[ -n "$ver" ]] || die "$pkg $prefix* is not available in $suite"
    VERSION["$pkg $suite"]="$ver"
  done

  to_download=()
  for line in "${unresolved[@]}"; do
    read -r pkg suite _ <<<"$line"
    ver="${VERSION["$pkg $suite"]}"
    [[ -s "$CACHE/debs/$(deb_name "$pkg" "$ver" "$ARCH")" ]] || to_download+=("$pkg=$ver")
  done
  if ((${#to_download[@]})); then
    log "downloading ${to_download[*]}"
    # apt-get download writes into the current directory: a private tmp dir, then a move,
    # so an interrupted download never leaves a truncated .deb under its final name.
    tmp="$(mktemp -d "$CACHE/debs/.dl.XXXXXX")"
    (cd "$tmp" && apt-get "${APT_OPTS[@]}" download -qq "${to_download[@]}" >&2)
    mv "$tmp"/*.deb "$CACHE/debs/"
    rm -rf "$tmp"
  fi

  for line in "${unresolved[@]}"; do
    read -r pkg suite _ <<<"$line"
    ver="${VERSION["$pkg $suite"]}"
    deb="$CACHE/debs/$(deb_name "$pkg" "$ver" "$ARCH")"
    [[ -s "$deb" ]] || die "apt-get download $pkg=$ver produced no $deb"
    root="$CACHE/root/$pkg-$ver"
    log "extracting $pkg=$ver ($suite)"
    rm -rf "$root" "$root.tmp"
    dpkg-deb -x "$deb" "$root.tmp"
    touch "$root.tmp/.complete"
    mv "$root.tmp" "$root"
    # Record the resolution (replacing this package/suite's previous line).
    awk -v k="$pkg $suite" '$1" "$2 != k' "$RESOLVED_FILE" >"$RESOLVED_FILE.tmp"
    echo "$pkg $suite $ver" >>"$RESOLVED_FILE.tmp"
    mv "$RESOLVED_FILE.tmp" "$RESOLVED_FILE"
  done
fi

rootof() { printf '%s/root/%s-%s' "$CACHE" "$1" "${VERSION["$1 $2"]}"; }

# First existing path among the arguments (Debian moved binaries between usr/bin and
# usr/sbin across releases).
first() {
  local p
  for p in "$@"; do [[ -e "$p" ]] && { printf '%s' "$p"; return 0; }; done
  die "none of these exist: $*"
}

RUNC_ROOT="$(rootof runc bookworm)"
RUNC="$(first "$RUNC_ROOT/usr/sbin/runc" "$RUNC_ROOT/usr/bin/runc")"

# compose_engine NAME DOCKER_ROOT CLI_ROOT CONTAINERD_ROOT TINI_ROOT
# One bin directory per engine version, so PATH alone decides which dockerd, containerd
# and shim a host runs. runc is always Debian 12's: Debian 13's needs a newer glibc.
compose_engine() {
  local name="$1" droot="$2" croot="$3" ctrroot="$4" tiniroot="$5"
  local bin="$CACHE/engines/$name/bin"
  rm -rf "$bin.tmp"
  mkdir -p "$bin.tmp"
  ln -s "$(first "$droot/usr/sbin/dockerd" "$droot/usr/bin/dockerd")" "$bin.tmp/dockerd"
  ln -s "$(first "$droot/usr/sbin/docker-proxy" "$droot/usr/bin/docker-proxy")" "$bin.tmp/docker-proxy"
  ln -s "$(first "$croot/usr/bin/docker")" "$bin.tmp/docker"
  ln -s "$(first "$tiniroot/usr/bin/tini-static")" "$bin.tmp/docker-init"
  local f
  for f in "$ctrroot"/usr/bin/*; do ln -s "$f" "$bin.tmp/$(basename "$f")"; done
  ln -s "$RUNC" "$bin.tmp/runc"
  rm -rf "$bin"
  mv "$bin.tmp" "$bin"
}

D26="$(rootof docker.io trixie)"
D20="$(rootof docker.io bookworm)"
compose_engine "26.1.5" "$D26" "$(rootof docker-cli trixie)" "$(rootof containerd trixie)" "$(rootof tini trixie)"
# Debian 12's docker.io ships the CLI in the same package.
compose_engine "20.10.24" "$D20" "$D20" "$(rootof containerd bookworm)" "$(rootof tini bookworm)"

# compose_gvisor NAME RUNSC_ROOT: runsc plus the wrapper dockerd registers as a runtime.
# The wrapper pins the only configuration that works on this kernel (ptrace platform, no
# sandbox network) so containers need no per-run runtime arguments.
compose_gvisor() {
  local name="$1" rroot="$2"
  local bin="$CACHE/gvisor/$name/bin"
  local runsc
  runsc="$(first "$rroot/usr/bin/runsc" "$rroot/usr/sbin/runsc")"
  rm -rf "$bin.tmp"
  mkdir -p "$bin.tmp"
  ln -s "$runsc" "$bin.tmp/runsc"
  cat >"$bin.tmp/runsc-docker" <<EOF
#!/bin/sh
# Generated by scripts/testbed/fetch-packages.sh: gVisor as a Docker runtime on this kernel.
exec "$runsc" --platform=ptrace --network=none "\$@"
EOF
  chmod 755 "$bin.tmp/runsc-docker"
  rm -rf "$bin"
  mv "$bin.tmp" "$bin"
}
R_NEW="${VERSION["runsc bookworm-backports"]}"
R_OLD="${VERSION["runsc bookworm"]}"
compose_gvisor "$R_NEW" "$(rootof runsc bookworm-backports)"
compose_gvisor "$R_OLD" "$(rootof runsc bookworm)"

# Manifest for the TypeScript harness (plain JSON, written atomically).
json_engine() { # name dockerVersion containerdVersion
  printf '    "%s": { "bin": "%s", "dockerPackage": "%s", "containerdPackage": "%s", "runcPackage": "%s" }' \
    "$1" "$CACHE/engines/$1/bin" "$2" "$3" "${VERSION["runc bookworm"]}"
}
{
  echo "{"
  echo "  \"cache\": \"$CACHE\","
  echo "  \"engines\": {"
  json_engine "20.10.24" "${VERSION["docker.io bookworm"]}" "${VERSION["containerd bookworm"]}"
  echo ","
  json_engine "26.1.5" "${VERSION["docker.io trixie"]}" "${VERSION["containerd trixie"]}"
  echo
  echo "  },"
  echo "  \"gvisor\": {"
  printf '    "old": { "version": "%s", "bin": "%s" },\n' "$R_OLD" "$CACHE/gvisor/$R_OLD/bin"
  printf '    "new": { "version": "%s", "bin": "%s" }\n' "$R_NEW" "$CACHE/gvisor/$R_NEW/bin"
  echo "  },"
  echo "  \"packages\": {"
  n=0
  for line in "${WANTED[@]}"; do
    read -r pkg suite _ <<<"$line"
    ((n++)) && echo ","
    printf '    "%s %s": { "version": "%s", "root": "%s" }' "$pkg" "$suite" "${VERSION["$pkg $suite"]}" "$(rootof "$pkg" "$suite")"
  done
  echo
  echo "  }"
  echo "}"
} >"$CACHE/manifest.json.tmp"
mv "$CACHE/manifest.json.tmp" "$CACHE/manifest.json"

# Resulting paths, one per line, for humans and scripts.
for line in "${WANTED[@]}"; do
  read -r pkg suite _ <<<"$line"
  printf '%-12s %-19s %-32s %s\n' "$pkg" "$suite" "${VERSION["$pkg $suite"]}" "$(rootof "$pkg" "$suite")"
done
printf 'engine 20.10.24  %s\n' "$CACHE/engines/20.10.24/bin"
printf 'engine 26.1.5    %s\n' "$CACHE/engines/26.1.5/bin"
printf 'runsc  %-9s %s\n' "old" "$CACHE/gvisor/$R_OLD/bin"
printf 'runsc  %-9s %s\n' "new" "$CACHE/gvisor/$R_NEW/bin"
printf 'manifest         %s\n' "$CACHE/manifest.json"
