#!/usr/bin/env bash
# Makes, once, the cached Debian 13 (trixie) root file system that the rootfs hosts of the
# testbed (test/support/testbed/rootfs-hosts.ts) run on, and the Debian packages their
# apt/deb upgrades install from the Upshift server's mirror.
#
#   scripts/testbed/debian-rootfs.sh          # build if missing; prints the manifest path
#
# Cache: ${UPSHIFT_TESTBED_CACHE:-$HOME/.cache/upshift-testbed}/debian13-v2/
#   rootfs/         debootstrap --variant=minbase --include=ca-certificates,iptables,curl trixie,
#                   then Docker Engine 26.1.5 (docker.io from trixie, with containerd
#                   1.7.24, runc, tini) installed by apt inside it: what every host starts
#                   from. Read-only lower layer of each host's overlay; never written to
#                   after the build. Its apt sources are emptied: a host installs only
#                   from the mirror it is given.
#   debs/           the .deb files of both engines and their dependencies (docker.io and
#                   docker-cli 26.1.5 from trixie and 28.5.2 from sid, containerd 1.7.24
#                   from trixie and 2.1.9 from sid, runc, tini, and what apt pulled in):
#                   what a test uploads to the mirror, so that runs never reach the archive
#   manifest.json   versions resolved at build time, and the files per version
#
# The archive address is read from /etc/apt/sources.list.d/debian.sources at run time and
# written nowhere in the repository. The archive is reached once, by this build; the
# build runs in a private mount namespace (nothing of its chroot mounts outlives it) and
# never changes the machine's own /etc/apt. sid's Release is past its Valid-Until on the
# archive snapshot this machine uses: that check is turned off for sid only at build time.
#
# Idempotent: with rootfs/.complete and manifest.json present it only prints the path.
#
# The recipe is versioned in the cache directory's name (RECIPE): a change to what the
# base holds gets a new name, so a run of the previous recipe that uses the old cache at
# the same time is not pulled from under its overlays. v2 added curl (a real Debian host
# has it, and the install script is run with `curl … | sh` inside a host). An old
# directory is left alone; remove it by hand (rm -rf CACHE/debian13) when nothing uses it.
set -euo pipefail

CACHE="${UPSHIFT_TESTBED_CACHE:-$HOME/.cache/upshift-testbed}"
RECIPE=debian13-v2
OUT="$CACHE/$RECIPE"
SYSTEM_SOURCES="/etc/apt/sources.list.d/debian.sources"
KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"

log() { printf '[debian-rootfs] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (debootstrap, chroot)"
mkdir -p "$CACHE"
exec 9>"$CACHE/.$RECIPE.lock"
flock 9

if [[ -f "$OUT/rootfs/.complete" && -f "$OUT/manifest.json" ]]; then
  echo "$OUT/manifest.json"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

[[ -r "$SYSTEM_SOURCES" ]] || die "$SYSTEM_SOURCES not found"
URI="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$SYSTEM_SOURCES")"
[[ -n "$URI" ]] || die "no archive URI in $SYSTEM_SOURCES"

started=$SECONDS
BUILD="$(mktemp -d "$CACHE/.$RECIPE-build.XXXXXX")"
trap 'rm -rf --one-file-system "$BUILD"' EXIT
ROOT="$BUILD/rootfs"

log "debootstrap trixie (minbase, ca-certificates, iptables, curl)"
debootstrap --variant=minbase --include=ca-certificates,iptables,curl trixie "$ROOT" "$URI" >"$BUILD/debootstrap.log" 2>&1 ||
  { tail -20 "$BUILD/debootstrap.log" >&2; die "debootstrap failed"; }
log "debootstrap done in $((SECONDS - started)) s"

# Inside the chroot: the archive for trixie and sid (sid only to download from), no
# service ever started by a maintainer script, and the resolver of the machine for the
# duration of the build.
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb [signed-by=$KEYRING] $URI trixie main
deb [signed-by=$KEYRING check-valid-until=no] $URI sid main
EOF
cp "$KEYRING" "$ROOT$KEYRING" 2>/dev/null || true
printf 'APT::Default-Release "trixie";\n' >"$ROOT/etc/apt/apt.conf.d/90upshift-default-release"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

# The chroot's mounts live in a private mount namespace: they disappear with it, also if
# this script is killed.
cat >"$BUILD/inside.sh" <<'EOF'
#!/bin/sh
set -eu
export DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin
apt-get update -qq
# Exact versions, resolved now: a Debian rebuild (+bN) changes them.
ver() { apt-cache madison "$1" | awk -v s="$2" -v p="$3" '$0 ~ ("/" s "[ /]") || $0 ~ (" " s "/") { if (index($3, p) == 1) { print $3; exit } }'; }
D26="$(ver docker.io trixie 26.1.5)"; C26="$(ver docker-cli trixie 26.1.5)"
D28="$(ver docker.io sid 28.5.2)"; C28="$(ver docker-cli sid 28.5.2)"
K17="$(ver containerd trixie 1.7.24)"; K21="$(ver containerd sid 2.)"
for v in D26 C26 D28 C28 K17 K21; do eval "test -n \"\$$v\"" || { echo "version $v not found" >&2; exit 1; }; done
mkdir -p /debs/engine-26 /debs/engine-28 /debs/containerd-2
apt-get clean
# Engine 26.1.5 installed from trixie; the files apt fetched are what a host needs
# beyond the base to install it.
apt-get install -y -q --no-install-recommends "docker.io=$D26" "docker-cli=$C26" "containerd=$K17"
cp /var/cache/apt/archives/*.deb /debs/engine-26/
apt-get clean
# Engine 28.5.2 from sid over it: only what that upgrade fetches (apt resolves it on the
# installed 26.1.5, with trixie's libc and containerd 1.7.24).
apt-get install -y -q --no-install-recommends --download-only "docker.io=$D28" "docker-cli=$C28"
cp /var/cache/apt/archives/*.deb /debs/engine-28/
apt-get clean
apt-get install -y -q --no-install-recommends --download-only "containerd=$K21"
cp /var/cache/apt/archives/*.deb /debs/containerd-2/
apt-get clean
printf 'docker26=%s\ncli26=%s\ndocker28=%s\ncli28=%s\ncontainerd17=%s\ncontainerd2=%s\n' "$D26" "$C26" "$D28" "$C28" "$K17" "$K21" >/debs/versions
EOF
chmod 755 "$BUILD/inside.sh"
cp "$BUILD/inside.sh" "$ROOT/inside.sh"
log "installing Docker Engine 26.1.5 inside, downloading 28.5.2 and containerd 2 from sid"
unshare --mount --propagation private --fork sh -c '
  set -e
  mount -t proc proc "$1/proc"
  mount --rbind /dev "$1/dev"
  mount --rbind /sys "$1/sys"
  chroot "$1" /inside.sh
' sh "$ROOT" >"$BUILD/inside.log" 2>&1 || { tail -30 "$BUILD/inside.log" >&2; die "installing inside the root file system failed"; }

# What a host must not carry: the archive's address, its lists, the machine's resolver,
# the build's leftovers.
rm -f "$ROOT/inside.sh" "$ROOT/etc/apt/sources.list" "$ROOT/etc/apt/apt.conf.d/90upshift-default-release" "$ROOT/etc/resolv.conf"
rm -rf "$ROOT/var/lib/apt/lists/"* "$ROOT/var/cache/apt/"*.bin
mkdir -p "$ROOT/var/lib/apt/lists/partial"
mv "$ROOT/debs" "$BUILD/debs"

# The manifest: versions and files, for rootfs-hosts.ts.
{
  printf '{\n'
  while IFS='=' read -r k v; do printf '  "%s": "%s",\n' "$k" "$v"; done <"$BUILD/debs/versions"
  for set in engine-26 engine-28 containerd-2; do
    printf '  "%s": [' "$set"
    first=1
    for f in "$BUILD/debs/$set"/*.deb; do
      ((first)) || printf ','
      first=0
      printf '"%s"' "$(basename "$f")"
    done
    printf '],\n'
  done
  printf '  "builtAt": "%s",\n  "buildSeconds": %d\n}\n' "$(date -u +%FT%TZ)" "$((SECONDS - started))"
} >"$BUILD/manifest.json"
touch "$ROOT/.complete"

rm -rf --one-file-system "$OUT"
mkdir -p "$OUT"
mv "$ROOT" "$OUT/rootfs"
mv "$BUILD/debs" "$OUT/debs"
mv "$BUILD/manifest.json" "$OUT/manifest.json"
log "built in $((SECONDS - started)) s: $(du -sh "$OUT/rootfs" | cut -f1) root file system, $(du -sh "$OUT/debs" | cut -f1) of packages"
echo "$OUT/manifest.json"
