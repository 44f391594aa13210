#!/usr/bin/env bash
# Compiles every csrc/cuda/*.cu with nvcc -c, so the CUDA path cannot rot on machines without a
# GPU. Nothing is linked or run. Usage: PY=.venv/bin/python bash csrc/cuda_check.sh
#
# Without nvcc (not on PATH, not at /usr/local/cuda/bin/nvcc) it prints one line,
# `cuda-check: skipped (nvcc not found)`, and succeeds, so `make test` works on machines without
# the CUDA toolkit; with XITE_REQUIRE_NVCC=1 (CI, .ci/run) a missing nvcc is a failure instead.
# XITE_NVCC names the nvcc to use, or `none` to behave as if there were none (for testing the
# skip path: PATH alone cannot hide the /usr/local/cuda fallback).
#
# CPU-only torch wheels ship c10/cuda headers but not the CMake-generated
# c10/cuda/impl/cuda_cmake_macros.h; when it is missing, a stand-in with the content a CUDA build
# generates is put on the include path (for this check only; real CUDA builds use torch's own).
set -euo pipefail

PY=${PY:-python}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ -n "${XITE_NVCC:-}" ]]; then
  NVCC=$XITE_NVCC
  if [[ "$NVCC" == none ]]; then
    NVCC=
  elif [[ ! -x "$NVCC" ]]; then
    echo "cuda-check: XITE_NVCC=$NVCC is not an executable file" >&2
    exit 1
  fi
else
  NVCC=$(command -v nvcc || true)
  if [[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]]; then NVCC=/usr/local/cuda/bin/nvcc; fi
fi
if [[ -z "$NVCC" ]]; then
  if [[ "${XITE_REQUIRE_NVCC:-}" == 1 ]]; then
    echo "cuda-check: nvcc not found (not on PATH, not at /usr/local/cuda/bin/nvcc) and XITE_REQUIRE_NVCC=1;" \
         "install the CUDA toolkit" >&2
    exit 1
  fi
  echo "cuda-check: skipped (nvcc not found)"
  exit 0
fi

mapfile -t INCLUDES < <("$PY" -c '
import sysconfig
from torch.utils.cpp_extension import include_paths
for p in include_paths():
    print(p)
print(sysconfig.get_paths()["include"])
')
TORCH_INCLUDE=${INCLUDES[0]}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

INC_FLAGS=()
if [[ ! -f "$TORCH_INCLUDE/c10/cuda/impl/cuda_cmake_macros.h" ]]; then
  mkdir -p "$WORK/shim/c10/cuda/impl"
  printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' > "$WORK/shim/c10/cuda/impl/cuda_cmake_macros.h"
  INC_FLAGS+=(-I"$WORK/shim")
  echo "cuda-check: torch is a CPU-only build; using a stand-in c10/cuda/impl/cuda_cmake_macros.h"
fi
for p in "${INCLUDES[@]}"; do INC_FLAGS+=(-I"$p"); done

# The flags torch.utils.cpp_extension passes to nvcc, for the archs a wheel would target.
FLAGS=(-std=c++20 -O3 --expt-relaxed-constexpr -Xcompiler -fPIC
       -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__
       -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__
       -DTORCH_API_INCLUDE_EXTENSION_H -DTORCH_EXTENSION_NAME=_C -DXITE_WITH_CUDA=1
       -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
       -diag-suppress 3306)

echo "cuda-check: $("$NVCC" --version | tail -n 2 | head -n 1)"
status=0
shopt -s nullglob
files=("$HERE"/cuda/*.cu)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "cuda-check: no .cu files under $HERE/cuda" >&2
  exit 1
fi
for cu in "${files[@]}"; do
  obj="$WORK/$(basename "${cu%.cu}").o"
  start=$SECONDS
  if "$NVCC" -c "$cu" -o "$obj" "${FLAGS[@]}" "${INC_FLAGS[@]}" 2> "$WORK/log"; then
    echo "cuda-check: compiled ${cu#"$HERE"/} ($(( SECONDS - start )) s)"
  else
    grep -v "Wc++20-extensions\|^ *[0-9]* |\|^ *|\|AutogradState.h" "$WORK/log" >&2 || true
    echo "cuda-check: FAILED ${cu#"$HERE"/}" >&2
    status=1
  fi
done
exit $status
