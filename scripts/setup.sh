#!/usr/bin/env bash
# Idempotent setup: Debian packages, npm dependencies, bpf/, native/ and TypeScript.
# Each step is skipped when its output is already up to date, so running it twice is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(clang llvm libbpf-dev linux-libc-dev iproute2 iptables bpftool curl dnsutils procps util-linux make g++ python3 libre2-dev dnsmasq-base openssl dnsperf dnsdist prometheus)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  # Something else may hold the apt lock for a while after boot: wait for it rather than fail.
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

make -s -C bpf
if [[ ! -f native/build/Release/membrane_native.node ]] || [[ -n $(find native/src native/binding.gyp -newer native/build/Release/membrane_native.node 2>/dev/null) ]]; then
  (cd native && node ../node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir=/usr >/dev/null)
fi
if [[ ! -f native/re2/build/Release/membrane_re2.node ]] || [[ -n $(find native/re2/src native/re2/binding.gyp -newer native/re2/build/Release/membrane_re2.node 2>/dev/null) ]]; then
  (cd native/re2 && node ../../node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir=/usr >/dev/null)
fi
npx tsc -p tsconfig.json
