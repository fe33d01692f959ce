#!/bin/sh
# Installs the Debian packages corral needs to build, test and run its default image.
# Idempotent; prints nothing when everything is already present.
set -eu

PKGS="
build-essential pkg-config clang libclang-rt-14-dev
libseccomp-dev libcap-dev libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev
libcmark-gfm-dev libcmark-gfm-extensions-dev libcmocka-dev python3-dev
python3 python3-numpy python3-pandas python3-matplotlib python3-scipy fonts-dejavu-core
bubblewrap hyperfine wrk procps iproute2 util-linux
chromium
"
# Node.js drives the browser tests (tests/node); a node already on the machine (e.g. from
# another distribution channel, which conflicts with Debian's npm package) is used as it is.
[ -x /usr/bin/node ] || PKGS="$PKGS nodejs npm"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "corral: missing Debian packages:$missing (run 'make deps' as root)" >&2
		exit 1
	fi
	echo "corral: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# tests/node's npm packages, exactly as locked in tests/node/package-lock.json: playwright-core
# for the report layout test (it drives /usr/bin/chromium; it downloads no browser) and the
# official E2B SDKs (e2b, @e2b/code-interpreter) that test corral serve as real clients.
node_dir="$(dirname "$0")/../tests/node"
missing_npm=""
for m in playwright-core e2b @e2b/code-interpreter; do
	[ -d "$node_dir/node_modules/$m" ] || missing_npm="$missing_npm $m"
done
if [ -f "$node_dir/package-lock.json" ] && [ -n "$missing_npm" ]; then
	echo "corral: installing tests/node modules (npm ci)" >&2
	npm ci --prefix "$node_dir" --silent --no-audit --no-fund >/dev/null
fi
