#!/bin/sh
# Installs the Debian packages sipd needs for a goal (build, test, fuzz, bench),
# only those missing, through sudo when not root. Safe to run every time.
set -e
goal=${1:-build}
pkgs="cmake pkg-config gcc make libinih-dev libssl-dev libsqlite3-dev libc-ares-dev"
case "$goal" in
  test)  pkgs="$pkgs libcmocka-dev sip-tester sipsak baresip-core sipvicious fail2ban python3 procps dnsmasq-base" ;;
  fuzz)  pkgs="$pkgs clang libclang-rt-dev" ;;
  coverage) pkgs="$pkgs libcmocka-dev sip-tester sipsak baresip-core sipvicious fail2ban python3 procps dnsmasq-base gcovr" ;;
  bench) pkgs="$pkgs sip-tester kamailio kamailio-sqlite-modules procps python3 valgrind linux-perf" ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "sipd: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
# Debian starts the kamailio service on install in some setups; the benchmark starts its own.
if echo "$missing" | grep -q kamailio; then
  $SUDO systemctl stop kamailio 2>/dev/null || $SUDO service kamailio stop 2>/dev/null || true
fi
exit 0
