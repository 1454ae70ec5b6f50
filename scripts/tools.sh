#!/usr/bin/env bash
# promtool and mtail for the tests of the monitoring role (rules, dashboard queries, the edge's
# mtail program), taken from Debian's packages - the versions the test instances run - without
# installing them on this machine (no daemon, no users): `apt-get download` + `dpkg-deb -x`
# into .cache/tools, then links in .cache/tools/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cache/tools
pkgs=(prometheus mtail)
bins=(usr/bin/promtool usr/bin/mtail)
if [ -x "$dir/bin/promtool" ] && [ -x "$dir/bin/mtail" ]; then exit 0; fi
mkdir -p "$dir/debs" "$dir/root" "$dir/bin"
( cd "$dir/debs" && apt-get download "${pkgs[@]}" >/dev/null 2>&1 ) || {
  apt-get update -qq && ( cd "$dir/debs" && apt-get download "${pkgs[@]}" >/dev/null )
}
for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
for b in "${bins[@]}"; do ln -sfn "../root/$b" "$dir/bin/$(basename "$b")"; done
rm -rf "$dir/debs"
"$dir/bin/promtool" --version 2>&1 | head -1
"$dir/bin/mtail" --version 2>&1 | head -1
