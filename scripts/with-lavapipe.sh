#!/usr/bin/env bash
# Runs a command with a software Vulkan driver selected for the Node WebGPU (Dawn) tests:
# Mesa's lavapipe if installed (about 6x faster), else Chromium's SwiftShader.
# An already-set VK_ICD_FILENAMES (e.g. an NVIDIA ICD on a GPU machine) is left alone.
# Usage: bash scripts/with-lavapipe.sh <command> [args...]
set -euo pipefail
if [[ -z ${VK_ICD_FILENAMES:-} ]]; then
  for icd in /usr/share/vulkan/icd.d/lvp_icd.json /usr/lib/chromium/vk_swiftshader_icd.json; do
    if [[ -f $icd ]]; then
      export VK_ICD_FILENAMES=$icd
      break
    fi
  done
fi
exec "$@"
