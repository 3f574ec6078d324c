# shellcheck shell=bash
# Shared by scripts/setup-host.sh and the bare-machine test (sourced, not run): where this Debian
# machine gets its packages, and Debian trixie as a second suite apt takes only when asked by name.

# The Debian mirror this machine's apt already uses (deb822 sources first, then sources.list).
debian_mirror() {
  local uri=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  printf '%s' "$uri"
}

# write_trixie_suite MIRROR NAME: trixie from MIRROR as /etc/apt/sources.list.d/NAME.sources, pinned
# to priority 1 in /etc/apt/preferences.d/NAME (bookworm stays the default for everything else).
write_trixie_suite() {
  local mirror=$1 name=$2
  cat > "/etc/apt/sources.list.d/$name.sources" <<SRC
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat > "/etc/apt/preferences.d/$name" <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 1
PIN
}
