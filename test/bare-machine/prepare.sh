#!/usr/bin/env bash
# Runs INSIDE the bare-machine container, as root, before the README's first command.
#  1. Gives the container what a real machine has and a plain container lacks (writable cgroups).
#  2. Installs only what the README says a newcomer needs first: Node.js 20+ (with npm) and make,
#     the way a Debian 12 user gets Node 20: from trixie, pinned low. Nothing that `make up` is
#     supposed to install itself (docker.io, compose, debootstrap) is installed here, and the
#     last step checks that it is really absent.
# usage: prepare.sh   (the Debian mirror is the one debootstrap wrote to /etc/apt/sources.list)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { printf 'prepare: %s\n' "$*"; }

# Docker mounts the cgroup hierarchies read-only in a non-privileged container; the inner dockerd's
# runc then fails with "mkdir /sys/fs/cgroup/cpuset/docker: read-only file system". A machine's
# cgroups are writable. A bind remount changes only this mount's flag (a plain remount would touch
# the shared superblock and is refused as busy); the mounts show only this container's own subtree.
# shellcheck disable=SC2013 # mount points have no spaces
for m in $(awk '($3 == "cgroup" || $3 == "cgroup2") && $4 ~ /^ro(,|$)/ {print $2}' /proc/self/mounts); do
  mount -o remount,bind,rw "$m"
done
say "cgroups writable ($(stat -fc %T /sys/fs/cgroup): $(awk '$3 == "cgroup" || $3 == "cgroup2"' /proc/self/mounts | wc -l) mounts)"

# shellcheck source=SCRIPTDIR/../../scripts/lib/debian.sh
. /root/bare-debian.sh
mirror=$(debian_mirror)
[ -n "$mirror" ] || { echo "prepare: no deb line in /etc/apt/sources.list" >&2; exit 1; }

# Bookworm's nodejs is 18; trixie has 20. A second suite pinned to 1: taken only when asked for.
write_trixie_suite "$mirror" trixie

say "apt-get update ($mirror: bookworm, trixie pinned to 1)"
apt-get update -qq
say "apt-get install make ca-certificates"
apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 make ca-certificates
# The trust anchors run.sh copied from the host (if any) into /usr/local/share/ca-certificates.
update-ca-certificates >/dev/null
say "apt-get install -t trixie nodejs npm"
apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 -t trixie nodejs npm

node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "prepare: node $(node --version) is older than 20" >&2; exit 1; }
say "node $(node --version), npm $(npm --version), $(make --version | head -n 1)"

# The point of the test: `make up` must bring these itself.
present=""
for tool in docker dockerd containerd runc docker-compose debootstrap iptables; do
  if command -v "$tool" >/dev/null; then present="$present $tool"; fi
done
[ -z "$present" ] || { echo "prepare: already present before make up:$present" >&2; exit 1; }
say "absent before make up: docker dockerd containerd runc docker-compose debootstrap iptables"
