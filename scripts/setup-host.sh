#!/usr/bin/env bash
# Makes this machine able to run an etcd-lab: a Docker engine that answers, compose v2,
# and (with --images) the lab's local images. Idempotent: a second run only checks.
#
# On Debian as root it installs what is missing: docker.io and debootstrap from the configured
# Debian mirror, compose v2 from Debian trixie (bookworm ships only compose v1) and starts dockerd.
# Anywhere else (macOS, a Linux that already has Docker) it installs nothing and says what is missing.
set -euo pipefail

want_images=0
want_kind=0
want_browser=0
want_clients=0
for arg in "$@"; do
  case "$arg" in
    --images) want_images=1 ;;
    --kind) want_kind=1 ;;
    --browser) want_browser=1 ;;
    --clients) want_clients=1 ;;
    -h|--help)
      echo "usage: scripts/setup-host.sh [--images] [--kind] [--browser] [--clients]"
      echo "  --images   also build the lab's local etcd and HAProxy images (etcd-lab images build)"
      echo "  --kind     also install the kind binary (Debian trixie's package) where possible"
      echo "  --browser  also install Chromium (Debian's package) for the stats-page browser test"
      echo "  --clients  also install Debian's etcdctl (etcd-client), the real client the tests use, and systemd-analyze"
      exit 0 ;;
    *) echo "setup-host: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup-host: %s\n' "$*"; }
die() { printf 'setup-host: %s\n' "$*" >&2; exit 1; }

is_debian_root() { [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

engine_up() { docker info >/dev/null 2>&1; }

# shellcheck source=SCRIPTDIR/lib/debian.sh
. "$(dirname "$0")/lib/debian.sh"

apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    apt-get update -qq >/dev/null 2>&1 || apt-get update -qq || true
    apt_updated=1
  fi
}

# Trixie as an extra suite pinned to priority 1: apt takes a package from it only when asked by name.
add_trixie_suite() {
  [ -f /etc/apt/sources.list.d/etcd-lab-trixie.sources ] && return 0
  local mirror
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || die "cannot tell which Debian mirror this machine uses (no URIs in /etc/apt/sources.list*)"
  write_trixie_suite "$mirror" etcd-lab-trixie
  apt_updated=0
}

# A trixie .deb whose only needs bookworm already meets (a static Go binary): download and dpkg -i.
install_from_trixie() {
  local pkg=$1 dir
  add_trixie_suite
  apt_update
  dir=$(mktemp -d)
  # apt downloads as its own user, _apt, into the current directory.
  chown _apt "$dir" 2>/dev/null || true
  (cd "$dir" && apt-get download -qq "$pkg/trixie" >/dev/null)
  dpkg -i "$dir"/*.deb >/dev/null
  rm -rf "$dir"
}

compose_v2() { docker compose version >/dev/null 2>&1; }

start_dockerd() {
  say "starting dockerd (log: /var/log/etcd-lab-dockerd.log)"
  nohup dockerd >/var/log/etcd-lab-dockerd.log 2>&1 &
  for _ in $(seq 1 120); do
    if [ -S /var/run/docker.sock ] && engine_up; then say "dockerd is up"; return 0; fi
    sleep 0.5
  done
  tail -n 20 /var/log/etcd-lab-dockerd.log >&2 || true
  die "dockerd did not answer within 60 s (see /var/log/etcd-lab-dockerd.log)"
}

if ! engine_up; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer: start that engine, or unset DOCKER_HOST"
  fi
  if ! is_debian_root; then
    die "no Docker engine answers: start Docker Desktop (macOS/Windows) or your Docker service, then run this again"
  fi
  if ! command -v dockerd >/dev/null; then
    apt_update
    say "installing docker.io from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  start_dockerd
fi

if ! compose_v2; then
  if ! is_debian_root; then
    die "docker compose v2 is missing: install the Docker Compose plugin (https://docs.docker.com/compose/install/)"
  fi
  say "installing compose v2 (docker-compose from Debian trixie)"
  install_from_trixie docker-compose
  compose_v2 || die "compose v2 still does not answer after installing trixie's docker-compose"
fi
say "$(docker compose version)"

if [ "$want_kind" = 1 ] && ! command -v kind >/dev/null; then
  if is_debian_root; then
    say "installing kind (Debian trixie)"
    install_from_trixie kind
  else
    say "kind is missing: see https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  fi
fi

# Installs a package from Debian when its command is wanted and missing; elsewhere says what to do.
need() { # need WANTED COMMAND PACKAGE WHAT-FOR IF-NOT-DEBIAN
  if [ "$1" != 1 ] || command -v "$2" >/dev/null; then return 0; fi
  if is_debian_root; then
    apt_update
    say "installing $3 ($4)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$3" >/dev/null
  else
    say "$2 is missing: $5"
  fi
}

need "$want_browser" chromium chromium "for the stats-page test" "install Chromium (or set CHROMIUM=/path/to/chrome) for the stats-page test"
need "$want_clients" etcdctl etcd-client "Debian's etcdctl, the real client the tests use" "install etcd's client (https://etcd.io/docs/latest/install/) for the TLS client tests"
# The per-host export's test checks its unit files the way systemd does.
need "$want_clients" systemd-analyze systemd "for systemd-analyze verify" "the export hosts test checks unit files with it (package systemd)"

# Always, not only with --images: `etcd-lab up` builds the local images by itself when the official
# ones cannot be pulled, and a base image without a registry needs debootstrap.
if is_debian_root && ! command -v debootstrap >/dev/null; then
  apt_update
  say "installing debootstrap (for local images when no registry answers)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

if [ "$want_images" = 1 ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  node "$here/bin/etcd-lab.js" images build
fi
