"""Builds xite's compiled core, the extension ``xite._C``; metadata is in pyproject.toml.

- CPU-only torch: a CppExtension with OpenMP (the kernels run rows in parallel).
- torch with CUDA and nvcc found: a CUDAExtension that adds csrc/cuda/*.cu.
- ``XITE_FORCE_CUDA=1`` insists on the CUDA build (wheels built on machines without a GPU) and
  fails when torch or nvcc cannot provide it; ``XITE_NO_EXT=1`` skips the extension entirely
  (xite then runs the pure-PyTorch reference and says so).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from glob import glob
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _find_nvcc() -> str | None:
    from torch.utils.cpp_extension import CUDA_HOME

    candidates = [shutil.which("nvcc")]
    if CUDA_HOME:
        candidates.append(os.path.join(CUDA_HOME, "bin", "nvcc"))
    candidates.append("/usr/local/cuda/bin/nvcc")
    return next((c for c in candidates if c and os.path.exists(c)), None)


def _nvcc_version(nvcc: str) -> str:
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=False).stdout
    for token in out.replace(",", " ").split():
        if token.startswith("V") and token[1:2].isdigit():
            return token[1:]
    return "unknown"


def _use_cuda() -> tuple[bool, str | None]:
    import torch

    nvcc = _find_nvcc()
    force = _flag("XITE_FORCE_CUDA")
    if force and torch.version.cuda is None:
        sys.exit("XITE_FORCE_CUDA=1 but this torch is a CPU-only build: install a CUDA torch first")
    if force and nvcc is None:
        sys.exit("XITE_FORCE_CUDA=1 but nvcc was not found (PATH, CUDA_HOME, /usr/local/cuda)")
    return (torch.version.cuda is not None and nvcc is not None), nvcc


def _sources(pattern: str) -> list[str]:
    # setuptools wants paths relative to setup.py.
    return sorted(os.path.relpath(p, ROOT) for p in glob(str(ROOT / pattern)))


def _extensions():
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    sources = _sources("csrc/xite_ops.cpp") + _sources("csrc/cpu/*.cpp")
    # -O3 and OpenMP, never -march=native: wheels and CI machines differ from the build machine
    # (the float32 row loop is multiversioned in the source instead).
    cxx = ["-O3", "-fopenmp", "-fno-math-errno"]
    use_cuda, nvcc = _use_cuda()
    if not use_cuda:
        ext = CppExtension("xite._C", sources, extra_compile_args={"cxx": cxx}, extra_link_args=["-fopenmp"])
        return [ext], BuildExtension
    cuda_version = _nvcc_version(nvcc)
    ext = CUDAExtension(
        "xite._C",
        sources + _sources("csrc/cuda/*.cu"),
        define_macros=[("XITE_WITH_CUDA", "1"), ("XITE_CUDA_VERSION", cuda_version)],
        extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]},
        extra_link_args=["-fopenmp"],
    )
    return [ext], BuildExtension


def main() -> None:
    if _flag("XITE_NO_EXT"):
        setup()
        return
    ext_modules, build_ext = _extensions()
    setup(ext_modules=ext_modules, cmdclass={"build_ext": build_ext.with_options(use_ninja=True)})


main()
