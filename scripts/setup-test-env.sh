#!/usr/bin/env bash
# Makes sure the system packages the tests need are present:
#   - chromium (/usr/bin/chromium): the browser Playwright drives (WebGPU via SwiftShader);
#   - lavapipe from Mesa >= 23 (/usr/share/vulkan/icd.d/lvp_icd.json): the Vulkan driver that the
#     Node WebGPU (Dawn) kernel tests use. Debian bookworm's own Mesa 22.3 is rejected by Dawn, so
#     on bookworm it comes from bookworm-backports.
# Fast no-op when everything is there. As root it installs what is missing with apt-get;
# otherwise it prints what to install. Missing chromium is an error; a missing/old lavapipe is
# only a warning (scripts/with-lavapipe.sh then falls back to Chromium's SwiftShader ICD).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
LVP_ICD=/usr/share/vulkan/icd.d/lvp_icd.json

# True when lavapipe is installed and its Mesa is new enough for Dawn (>= 23).
lavapipe_ok() {
  [[ -f $LVP_ICD ]] || return 1
  command -v dpkg-query >/dev/null 2>&1 || return 0 # not Debian: trust the file
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null) || return 0
  v=${v#*:}                                            # drop an epoch
  [[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} >= 23))
}

has_backports() { grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; }

missing=()
[[ -x $CHROMIUM ]] || missing+=(chromium)
lavapipe_ok || missing+=(lavapipe)
((${#missing[@]} == 0)) && exit 0

codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || codename=
mesa_target=()
[[ $codename == bookworm ]] && mesa_target=(-t bookworm-backports)

if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  {
    echo "setup-test-env: missing system packages: ${missing[*]}"
    echo "  Install them as root (Debian/Ubuntu), e.g.:"
    if [[ $codename == bookworm ]] && ! has_backports; then
      echo "    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list"
    fi
    echo -n "    apt-get update"
    [[ -x $CHROMIUM ]] || echo -n " && apt-get install -y chromium"
    lavapipe_ok || echo -n " && apt-get install -y ${mesa_target[*]}${mesa_target[*]:+ }mesa-vulkan-drivers"
    echo
    echo "  (or run this script as root: sudo bash scripts/setup-test-env.sh)"
  } >&2
  if [[ " ${missing[*]} " == *" chromium "* ]]; then exit 1; fi
  echo "setup-test-env: continuing; the Node GPU tests will use Chromium's SwiftShader (slower)." >&2
  exit 0
fi

echo "setup-test-env: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if [[ $codename == bookworm ]] && ! has_backports; then
  echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/backports.list
fi
apt-get update -q
[[ -x $CHROMIUM ]] || apt-get install -y -q chromium
lavapipe_ok || apt-get install -y -q "${mesa_target[@]}" mesa-vulkan-drivers

[[ -x $CHROMIUM ]] || { echo "setup-test-env: $CHROMIUM still missing after install" >&2; exit 1; }
lavapipe_ok || { echo "setup-test-env: lavapipe (Mesa >= 23) still missing after install" >&2; exit 1; }
echo "setup-test-env: done" >&2
