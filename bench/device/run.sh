#!/usr/bin/env bash
# Runs kvtab's decode benchmark on a GPU machine with no network (packed by `npm run bench:device`, see
# bench/device/pack.ts and ../shared/docs/testing.md). Unpacks Node and dawn.node into $KVTAB_DEVICE_WORK
# (default /tmp/kvtab-device; kept, so a rerun starts at once), installs the Vulkan loader from debs/ when
# it is missing, finds the NVIDIA ICD, prints the adapter, then decode tok/s and % of the bandwidth roofline
# per model, KV mode and context. Results: JSON on stdout and in $OUT/device-speed.json (or the work
# folder) with the log next to it; the table comes last on stderr.
#   bash run.sh [--quick] [--bandwidth-gbs 4800] [--model-list a,b] [--modes full,int8] [--contexts 512,4096]
#               [--decode 32] [--budget-s 240]
# KVTAB_DEVICE_FORCE_DEBS=1 extracts every .deb (into $WORK/sysroot when not root; for testing the pack).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${KVTAB_DEVICE_WORK:-${TMPDIR:-/tmp}/kvtab-device}
log() { echo "[run.sh] $*" >&2; }
T0=$SECONDS
mkdir -p "$WORK"

# --- 1. Unpack (xz; else xz from debs/xz-utils via dpkg-deb; else python3's lzma).
XZ=()
if command -v xz >/dev/null 2>&1; then
  XZ=(xz -dc)
elif command -v dpkg-deb >/dev/null 2>&1 && [[ -f $HERE/debs/xz-utils.deb ]]; then
  dpkg-deb -x "$HERE/debs/xz-utils.deb" "$WORK/xz-utils"
  XZ=("$WORK/xz-utils/usr/bin/xz" -dc)
elif command -v python3 >/dev/null 2>&1; then
  XZ=(python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)')
else
  log "no xz, dpkg-deb or python3 to unpack node.xz"; exit 1
fi
unpack() { # src.xz dest: skipped when dest was unpacked from the same src before
  local sum; sum=$(cksum < "$1")
  if [[ -s $2 && -f $2.from && $(cat "$2.from") == "$sum" ]]; then return; fi
  mkdir -p "$(dirname "$2")"
  "${XZ[@]}" "$1" > "$2.tmp" && mv "$2.tmp" "$2" && echo "$sum" > "$2.from"
}
unpack "$HERE/node.xz" "$WORK/node" && chmod +x "$WORK/node"
unpack "$HERE/app/node_modules/webgpu/dist/linux-x64/dawn.node.xz" "$WORK/dawn.node"
rm -rf "$WORK/app" && cp -r "$HERE/app" "$WORK/app"
rm -f "$WORK/app/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
cp "$WORK/dawn.node" "$WORK/app/node_modules/webgpu/dist/linux-x64/dawn.node"
log "node $("$WORK/node" --version) and dawn.node unpacked in $WORK ($((SECONDS - T0)) s)"

# --- 2. Vulkan loader and GL/EGL dispatch libraries: a .deb is extracted when one of its libraries is missing.
have_lib() { ldconfig -p 2>/dev/null | grep -q "[[:space:]]$1 " || compgen -G "/usr/lib/x86_64-linux-gnu/$1*" >/dev/null || compgen -G "/lib/x86_64-linux-gnu/$1*" >/dev/null; }
if compgen -G "$HERE/debs/*.deb" >/dev/null && command -v dpkg-deb >/dev/null 2>&1; then
  installed=()
  for deb in "$HERE"/debs/*.deb; do
    [[ $(basename "$deb") == xz-utils.deb ]] && continue
    missing=0
    while read -r f; do [[ -e /$f ]] || missing=1; done < <(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./||' | grep '\.so[.0-9]*$' || true)
    if ((missing)) || [[ -n ${KVTAB_DEVICE_FORCE_DEBS:-} ]]; then
      if [[ $(id -u) == 0 ]]; then dpkg -x "$deb" / 2>/dev/null || dpkg-deb -x "$deb" /; else dpkg-deb -x "$deb" "$WORK/sysroot"; fi
      installed+=("$(basename "$deb" .deb)")
    fi
  done
  if ((${#installed[@]})); then
    log "extracted ${installed[*]}"
    if [[ $(id -u) == 0 ]]; then ldconfig; else export LD_LIBRARY_PATH="$WORK/sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
  fi
fi
have_lib libvulkan.so.1 || log "WARNING: libvulkan.so.1 still not found"
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [[ -d $d ]] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done

# --- 3. Vulkan driver (ICD). An ICD already chosen (VK_ICD_FILENAMES / VK_DRIVER_FILES) is kept.
if [[ -z ${VK_ICD_FILENAMES:-} && -z ${VK_DRIVER_FILES:-} ]]; then
  icd=""
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/local/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json /etc/vulkan/icd.d/nvidia_icd.x86_64.json; do
    [[ -f $f ]] && { icd=$f; break; }
  done
  [[ -z $icd ]] && icd=$(find /usr/local/nvidia /usr/share/vulkan /etc/vulkan /usr/local/share /opt -maxdepth 5 -name 'nvidia_icd*.json' 2>/dev/null | head -1 || true)
  if [[ -z $icd ]]; then # no json, but the driver's Vulkan library may be there: write an ICD for it
    lib=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 /{print $NF; exit}' || true)
    [[ -z $lib ]] && lib=$(find /usr/local/nvidia /usr/lib/x86_64-linux-gnu /usr/lib64 -maxdepth 2 -name 'libGLX_nvidia.so.0' 2>/dev/null | head -1 || true)
    if [[ -n $lib ]]; then
      icd="$WORK/nvidia_icd.json"
      printf '{"file_format_version": "1.0.1", "ICD": {"library_path": "%s", "api_version": "1.3"}}\n' "$lib" > "$icd"
    fi
  fi
  if [[ -n $icd ]]; then
    export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
    log "ICD: $icd"
  else
    log "WARNING: no nvidia_icd.json found; using the loader's default search"
  fi
else
  log "ICD (given): ${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}"
fi
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv,noheader 2>/dev/null | sed 's/^/[run.sh] nvidia-smi: /' >&2 || true

# --- 4. The benchmark.
RES=${OUT:-$WORK}
mkdir -p "$RES"
log "results: $RES/device-speed.json, log $RES/device-speed.log"
set +e
"$WORK/node" "$WORK/app/device-speed.mjs" --models "$WORK/app/models" --json "$RES/device-speed.json" "$@" 2> >(tee "$RES/device-speed.log" >&2)
rc=$?
set -e
wait
log "exit $rc after $((SECONDS - T0)) s"
exit $rc
