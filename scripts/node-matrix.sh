#!/usr/bin/env bash
# Runs the unit tests under each supported Node.js line (default: 20 22 24).
#
#   bash scripts/node-matrix.sh [MAJOR ...]          e.g. bash scripts/node-matrix.sh 22
#   bash scripts/node-matrix.sh --prepare MAJOR      only fetch the binary and build re2; prints its path
#
# A line other than the machine's own comes from the npm registry's `node-linux-<arch>` package (the
# binary the `node` package installs), unpacked in node_modules/.cache/membrane-node/. Our addons
# (native/, native/re2/) use N-API and load on every line as built. The `re2` package is a NAN addon
# built for one ABI (NODE_MODULE_VERSION): for each other ABI a copy of the package is built here
# against that line's headers, in node_modules/.cache/membrane-re2/abi-N/re2, which src/re2 loads
# when it runs under that ABI. The first build of a copy compiles RE2 and Abseil (minutes).
#
# The agent of a benchmark runs under another line with MEMBRANE_BENCH_NODE=$(bash scripts/node-matrix.sh --prepare 22).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/node_modules/.cache

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "node-matrix: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac

# The node binary of a major line: the machine's own when it is that line, else the registry package.
node_bin() {
  local major=$1
  if [[ $(node -p 'process.versions.node.split(".")[0]') == "$major" ]]; then
    command -v node
    return
  fi
  local dir=$cache/membrane-node/$major
  if [[ ! -x $dir/package/bin/node ]]; then
    mkdir -p "$dir"
    local tgz
    tgz=$(cd "$dir" && npm pack --silent "node-linux-$arch@$major" | tail -1)
    tar -xzf "$dir/$tgz" -C "$dir"
    rm -f "$dir/$tgz"
  fi
  echo "$dir/package/bin/node"
}

# A build of the re2 package for the ABI of `bin`, unless the installed one already loads there.
re2_for() {
  local bin=$1 abi
  abi=$("$bin" -p process.versions.modules)
  if "$bin" -e "require('re2')" 2>/dev/null; then return; fi
  local dir=$cache/membrane-re2/abi-$abi/re2
  if [[ -f $dir/build/Release/re2.node ]] && "$bin" -e "require('$dir')" 2>/dev/null; then return; fi
  echo "node-matrix: building re2 for $("$bin" --version) (ABI $abi) in $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$root/node_modules/re2" && tar --exclude=./build -cf - .) | tar -xf - -C "$dir"
  local nodedir
  nodedir=$(dirname "$(dirname "$bin")")
  # node-gyp and the binding's `node -e require('nan')` run under the target line, headers from its package.
  (cd "$dir" && PATH="$(dirname "$bin"):$PATH" "$bin" "$root/node_modules/node-gyp/bin/node-gyp.js" rebuild -j 2 --loglevel=warn --nodedir="$nodedir" >/dev/null)
  "$bin" -e "require('$dir')"
}

if [[ ${1:-} == --prepare ]]; then
  bin=$(node_bin "${2:?--prepare MAJOR}")
  re2_for "$bin"
  echo "$bin"
  exit 0
fi

majors=("$@")
((${#majors[@]})) || majors=(20 22 24)
status=0
summary=()
for major in "${majors[@]}"; do
  bin=$(node_bin "$major")
  re2_for "$bin"
  echo "== unit tests under $("$bin" --version)" >&2
  start=$(date +%s)
  if PATH="$(dirname "$bin"):$PATH" "$bin" node_modules/vitest/vitest.mjs run test/unit; then
    summary+=("$("$bin" --version): unit tests passed ($(($(date +%s) - start)) s)")
  else
    summary+=("$("$bin" --version): unit tests FAILED")
    status=1
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
