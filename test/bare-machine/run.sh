#!/usr/bin/env bash
# Bare-machine end-to-end test: the README's first command, `make up`, from a clean clone on a
# Debian 12 (bookworm) machine that has nothing but what the README asks for first (Node.js 20+).
#
# The "machine" is a container from a debootstrap'd bookworm minbase image (made here, cached by
# tag; no registry is needed or used) that can host its own Docker engine. Inside it, `make up`
# has to install Docker, compose v2 and debootstrap itself, build the lab's images from Debian
# packages and bring the lab up; then a put/get goes through 127.0.0.1:2379 (HAProxy's published
# port) and `make down` stops the lab. The container, its /var/lib/docker volume and the clone are
# always removed at the end (also on failure or Ctrl-C); the base image is kept (--fresh remakes it).
#
# usage: test/bare-machine/run.sh [--fresh] [--verbose]
#   --fresh     rebuild the bookworm base image even if it is cached
#   --verbose   stream every phase's output (default: to log files, tails shown on failure)
# Needs root (debootstrap), a Docker engine, and network to the Debian mirror and npm registry.
# Leftovers after a kill -9: docker ps -aq --filter label=io.etcd-lab.bare-test=1 | xargs -r docker rm -f -v
set -euo pipefail

BASE_IMAGE=etcd-lab-bare/bookworm:minbase
LABEL=io.etcd-lab.bare-test=1
NAME=etcd-lab-bare-$$
INNER_DIR=/root/etcd-lab
MAKE_UP_TIMEOUT=${ETCD_LAB_BARE_UP_TIMEOUT:-1500}

fresh=0
verbose=0
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=1 ;;
    --verbose|-v) verbose=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bare-machine: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/etcd-lab-bare-$$.XXXXXX")
logs=$work/logs
mkdir -p "$logs"

t_start=$EPOCHREALTIME
phase_names=()
phase_times=()
current=""
current_log=""
phase_t0=$t_start
container=$NAME # exists once the container phase has started it
status=1

ts() { date +%H:%M:%S; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
say() { printf '[%s] bare-machine: %s\n' "$(ts)" "$*"; }

# run_phase NAME COMMAND...: runs one phase, its output into logs/NAME.log (and the terminal with
# --verbose), and prints a timestamped line with its duration.
run_phase() {
  local name=$1 t0 rc=0
  shift
  current=$name
  current_log=$logs/$name.log
  say "$name ..."
  t0=$EPOCHREALTIME
  phase_t0=$t0
  # A subshell outside any `||`, so that set -e stops the phase at its first failing command
  # (bash ignores -e in a function called as `f || ...`). Its own INT/TERM trap stops it after a
  # Ctrl-C even when the interrupted command exits 0, as docker exec (without -t) does.
  set +e
  if [ "$verbose" = 1 ]; then
    (trap 'exit 130' INT TERM; set -e; "$@") 2>&1 | tee "$current_log"
    rc=${PIPESTATUS[0]}
  else
    (trap 'exit 130' INT TERM; set -e; "$@") >"$current_log" 2>&1
    rc=$?
  fi
  set -e
  local took
  took=$(elapsed "$t0" "$EPOCHREALTIME")
  phase_names+=("$name")
  phase_times+=("$took")
  if [ "$rc" != 0 ]; then
    say "FAIL $name (${took}s, exit $rc)"
    return "$rc"
  fi
  say "ok   $name (${took}s)$(phase_note "$name")"
  current=""
}

# One line of what a phase found, taken from its log.
phase_note() {
  case "$1" in
    base-image) grep -m1 -E '^(cached|built)' "$current_log" | sed 's/^/: /' || true ;;
    clone) grep -m1 '^clone of' "$current_log" | sed 's/^/: /' | cut -c1-100 || true ;;
    prerequisites) grep -m1 '^prepare: node ' "$current_log" | sed 's/^prepare:/:/' || true ;;
    make-up) printf ': %s %s' "$(grep -m1 -E '^lab .* is ready in' "$current_log")" "$(grep -m1 '^installed by make up:' "$current_log")" ;;
    kv-check) tail -n 1 "$current_log" | sed 's/^/: /' ;;
  esac
}

# shellcheck source=SCRIPTDIR/../../scripts/lib/debian.sh
. "$repo/scripts/lib/debian.sh"

inner() { docker exec -e CI=true "$container" "$@"; }

# ---- phases ----------------------------------------------------------------------------------

phase_base_image() {
  local old="" rootfs mirror new
  old=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
  if [ -n "$old" ] && [ "$fresh" = 0 ]; then
    echo "cached $BASE_IMAGE (${old:7:12}; --fresh rebuilds it)"
    return 0
  fi
  [ "$(id -u)" = 0 ] || { echo "making $BASE_IMAGE needs root (debootstrap)" >&2; return 1; }
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; return 1; }
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || { echo "cannot tell which Debian mirror this machine uses" >&2; return 1; }
  rootfs=$work/rootfs
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE"
  rm -rf --one-file-system "$rootfs"
  new=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")
  # --fresh: the previous image is now untagged; it is ours, so remove it (never anyone else's).
  if [ -n "$old" ] && [ "$old" != "$new" ]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
  echo "built $BASE_IMAGE (${new:7:12}) from debootstrap --variant=minbase bookworm $mirror"
}

phase_clone() {
  git clone --quiet "$repo" "$work/etcd-lab"
  git -C "$work/etcd-lab" log -1 --format='clone of %h %s'
}

phase_container() {
  # --privileged fails here ("unable to apply caps": this machine lacks CAP_SYS_RESOURCE), so
  # every capability but that one, no seccomp/AppArmor filter, and a real (non-overlay) filesystem
  # at /var/lib/docker so the inner engine can use overlay2. --init reaps orphans like a machine's init.
  docker run -d --name "$NAME" --label "$LABEL" --hostname bare-bookworm --init \
    --cap-add ALL --cap-drop SYS_RESOURCE \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    -v /var/lib/docker \
    "$BASE_IMAGE" sleep infinity
  # This machine's TLS trust anchors (here the egress proxy's CA that npm's HTTPS needs): a user's
  # machine in this environment has them, a fresh debootstrap does not. Picked up by prepare.sh.
  inner mkdir -p /usr/local/share/ca-certificates
  local crt
  for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -e "$crt" ] && docker cp "$crt" "$container:/usr/local/share/ca-certificates/"
  done
  docker cp "$work/etcd-lab" "$container:$INNER_DIR"
  docker cp "$here/prepare.sh" "$container:/root/bare-prepare.sh"
  docker cp "$repo/scripts/lib/debian.sh" "$container:/root/bare-debian.sh"
  docker cp "$here/kv-check.mjs" "$container:/root/bare-kv-check.mjs"
  inner sh -c "test -f $INNER_DIR/Makefile && ! test -d $INNER_DIR/node_modules && ! test -d $INNER_DIR/dist"
}

phase_prerequisites() { inner bash /root/bare-prepare.sh; }

phase_make_up() {
  # Exactly the README's first command, in the clone, as root; CI=true for plain progress lines.
  # --foreground: timeout stays in our process group, so a Ctrl-C reaches docker exec at once.
  timeout --foreground "$MAKE_UP_TIMEOUT" docker exec -e CI=true -w "$INNER_DIR" "$container" make up
  # shellcheck disable=SC2016 # expanded inside the container
  inner sh -c 'echo "installed by make up: $(docker version -f "docker {{.Server.Version}}") ($(docker info -f "{{.Driver}}, cgroup v{{.CgroupVersion}}")), $(docker compose version), $(debootstrap --version)"'
}

phase_kv_check() {
  local key value member
  key=bare-machine/$NAME
  value="written through HAProxy at $(date -u +%FT%TZ)"
  local publisher
  publisher=$(inner docker ps --filter publish=2379 --format '{{.Names}}')
  echo "2379 is published by: ${publisher:-nothing}"
  case "$publisher" in *haproxy*) ;; *) echo "expected HAProxy to publish 2379" >&2; return 1 ;; esac
  inner node /root/bare-kv-check.mjs "$key" "$value" http://127.0.0.1:2379
  # The same key read from a member directly: the write really reached the etcd cluster.
  member=$(inner docker ps -q --filter label=com.docker.compose.service=etcd1)
  [ -n "$member" ] || { echo "no etcd1 container" >&2; return 1; }
  local direct
  direct=$(inner docker exec "$member" etcdctl get "$key" --print-value-only)
  [ "$direct" = "$value" ] || { echo "etcd1 has '$direct', expected '$value'" >&2; return 1; }
  echo "put/get through 127.0.0.1:2379 ($publisher) read back what was written; etcd1 has it too"
}

phase_make_down() { docker exec -e CI=true -w "$INNER_DIR" "$container" make down; }

# ---- failure report and cleanup ----------------------------------------------------------------

report_failure() {
  echo
  say "FAILED in phase ${current:-?}"
  if [ -n "$current_log" ] && [ -s "$current_log" ] && [ "$current_log" != "$logs/make-up.log" ]; then
    echo "----- last 80 lines of phase $current -----"
    tail -n 80 "$current_log"
  fi
  if [ -s "$logs/make-up.log" ]; then
    echo "----- last 80 lines of the inner make up -----"
    tail -n 80 "$logs/make-up.log"
  fi
  if docker cp "$container:/var/log/etcd-lab-dockerd.log" "$logs/dockerd.log" >/dev/null 2>&1; then
    echo "----- last 80 lines of the inner dockerd log (/var/log/etcd-lab-dockerd.log) -----"
    tail -n 80 "$logs/dockerd.log"
  fi
  echo "-----"
}

cleanup() {
  local rc=$? t0
  trap - EXIT INT TERM
  # A phase cut short by a signal has not recorded its time yet.
  local last=""
  [ "${#phase_names[@]}" = 0 ] || last=${phase_names[${#phase_names[@]} - 1]}
  if [ -n "$current" ] && [ "$last" != "$current" ]; then
    phase_names+=("$current(interrupted)")
    phase_times+=("$(elapsed "$phase_t0" "$EPOCHREALTIME")")
  fi
  [ "$status" = 0 ] || report_failure
  t0=$EPOCHREALTIME
  say "cleanup ..."
  # Everything inside (the inner engine, its containers and images) lives in this container and
  # its anonymous /var/lib/docker volume: removing both removes all of it.
  if docker container inspect "$NAME" >/dev/null 2>&1; then
    docker rm -f -v "$NAME" >/dev/null || say "could not remove container $NAME"
  fi
  # A debootstrap interrupted midway may leave /proc or /sys mounted in its target.
  if [ -d "$work/rootfs" ]; then
    findmnt -rn -o TARGET | grep -F "$work/rootfs/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  fi
  if [ "$status" != 0 ]; then
    local kept=${TMPDIR:-/tmp}/etcd-lab-bare-$$-logs
    mv "$logs" "$kept" 2>/dev/null && say "logs kept in $kept"
  fi
  rm -rf --one-file-system "$work"
  local took
  took=$(elapsed "$t0" "$EPOCHREALTIME")
  phase_names+=(cleanup)
  phase_times+=("$took")
  say "ok   cleanup (${took}s): container $NAME and its volume removed, clone removed, $BASE_IMAGE kept"

  local summary="" i
  for i in "${!phase_names[@]}"; do summary+="${summary:+, }${phase_names[$i]} ${phase_times[$i]}s"; done
  local verdict=PASS
  [ "$status" = 0 ] || verdict=FAIL
  say "$verdict in $(elapsed "$t_start" "$EPOCHREALTIME")s total — $summary"
  [ "$status" = 0 ] || exit $(( rc == 0 ? 1 : rc ))
  exit 0
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

say "repo $repo, container $NAME, work dir $work"
run_phase base-image phase_base_image
run_phase clone phase_clone
run_phase container phase_container
run_phase prerequisites phase_prerequisites
run_phase make-up phase_make_up
run_phase kv-check phase_kv_check
run_phase make-down phase_make_down
status=0
