#!/usr/bin/env bash
# Installs tools/llama-oracle (llama.cpp via node-llama-cpp 3.21.1, prebuilt linux-x64 CPU binary only).
# Idempotent: a fast no-op when tools/llama-oracle/node_modules matches the lockfile (stamp check).
#
#   bash scripts/setup-oracle.sh          # install if missing/stale
#   FORCE=1 bash scripts/setup-oracle.sh  # reinstall
#
# What the install does and why:
#   npm ci --omit=optional  node-llama-cpp lists every platform's binary (incl. linux-x64-cuda, -cuda-ext,
#                           -vulkan: ~700 MB) as optionalDependencies; --omit=optional drops them all. The CPU
#                           one, @node-llama-cpp/linux-x64, is a direct (non-optional) dependency of the tool
#                           package, so it is still installed.
#   --ignore-scripts        skips node-llama-cpp's postinstall (which may try to download/build llama.cpp).
#   NODE_LLAMA_CPP_SKIP_DOWNLOAD=true, NODE_LLAMA_CPP_POSTINSTALL=skip: the same, belt and braces.
# Exit codes: 0 ok, 1 install/verification failed, 3 unsupported platform (only linux x64 glibc has the prebuilt).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tools/llama-oracle"
NM="$DIR/node_modules"
STAMP="$NM/.kvtab-oracle-stamp"
# Bump RECIPE when the install flags change, so existing installs are redone.
RECIPE="npm-ci--omit=optional--ignore-scripts/v1"

if [[ "$(uname -s)" != "Linux" || "$(uname -m)" != "x86_64" ]]; then
  echo "setup-oracle: unsupported platform $(uname -s)/$(uname -m) (needs linux x64 glibc)" >&2
  exit 3
fi

want_stamp() {
  { echo "$RECIPE"; cat "$DIR/package.json" "$DIR/package-lock.json"; } | sha256sum | cut -d' ' -f1
}

is_fresh() {
  [[ -z "${FORCE:-}" ]] || return 1
  [[ -f "$STAMP" ]] || return 1
  [[ "$(cat "$STAMP")" == "$(want_stamp)" ]] || return 1
  [[ -f "$NM/@node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node" ]] || return 1
  [[ -f "$NM/node-llama-cpp/package.json" ]] || return 1
  # A plain `npm ci` (without --omit=optional) would have brought the GPU builds: redo it.
  local gpu
  for gpu in "$NM"/@node-llama-cpp/*-cuda* "$NM"/@node-llama-cpp/*-vulkan*; do
    [[ -e "$gpu" ]] && return 1
  done
  return 0
}

is_fresh && exit 0

# Serialize concurrent callers (e.g. parallel test setups).
LOCK="${TMPDIR:-/tmp}/kvtab-llama-oracle-$(echo "$DIR" | sha256sum | cut -c1-12).lock"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$LOCK"
  flock 9
  is_fresh && exit 0
fi

echo "setup-oracle: installing $DIR (node-llama-cpp, CPU prebuilt only)" >&2
start=$SECONDS
(
  cd "$DIR"
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true NODE_LLAMA_CPP_POSTINSTALL=skip \
    npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >&2
)

# Verify: the CPU addon loads through node-llama-cpp without building or downloading anything.
# (A script file, not `node -e`: getLlama forks a binding-test child with process.execArgv, and an
# inherited `-e` makes that child run the eval code instead of the test.)
VERIFY="$(mktemp "${TMPDIR:-/tmp}/kvtab-oracle-verify-XXXXXX.mjs")"
trap 'rm -f "$VERIFY"' EXIT
cat >"$VERIFY" <<'EOF'
import { pathToFileURL } from "node:url";
const { getLlama } = await import(pathToFileURL(process.env.KVTAB_ORACLE_NM + "/node-llama-cpp/dist/index.js").href);
const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, progressLogs: false, logLevel: "error" });
if (llama.gpu !== false) throw new Error("expected a CPU-only llama.cpp, got gpu=" + llama.gpu);
await llama.dispose();
EOF
KVTAB_ORACLE_NM="$NM" NODE_LLAMA_CPP_SKIP_DOWNLOAD=true node "$VERIFY" ||
  { echo "setup-oracle: node-llama-cpp CPU binary failed to load" >&2; exit 1; }

want_stamp >"$STAMP"
echo "setup-oracle: done in $((SECONDS - start)) s ($(du -sh "$NM" | cut -f1))" >&2
