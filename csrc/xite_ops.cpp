// xite's compiled core: the schema of xite::project_interpolate and the pybind11
// module xite._C that reports how the library was built.
//
// Importing xite._C loads this shared library; its static initialisers register the schema
// (TORCH_LIBRARY below) and the CPU/CUDA kernels (TORCH_LIBRARY_IMPL in csrc/cpu, csrc/cuda).
// Autograd and the fake (meta) implementation are registered in Python (xite/ops/_library.py).
#include <ATen/Config.h>
#include <ATen/Parallel.h>
#include <torch/extension.h>
#include <torch/library.h>
#include <torch/version.h>

#include <string>

namespace xite {
namespace cpu {
bool multiversioned();
}
}  // namespace xite

// project_interpolate_into writes into an existing tensor (`out=` in Python) and returns nothing:
// torch.compile cannot functionalise a custom op whose output aliases an input.
// basis and mean are inputs without gradients (the projector is fitted, not learned): the
// autograd formula covers target, bank and lam only, and refuses to run when basis or mean
// require grad (see xite/ops/_library.py).
TORCH_LIBRARY(xite, m) {
  m.def(
      "project_interpolate(Tensor target, Tensor bank, Tensor index, Tensor lam, Tensor? basis=None, "
      "Tensor? mean=None, str projection=\"keep\", str interpolation=\"linear\") -> Tensor");
  m.def(
      "project_interpolate_into(Tensor target, Tensor bank, Tensor index, Tensor lam, Tensor? basis=None, "
      "Tensor? mean=None, str projection=\"keep\", str interpolation=\"linear\", *, Tensor(a!) out) -> ()");
}

namespace {

#define XITE_STR_(x) #x
#define XITE_STR(x) XITE_STR_(x)

pybind11::dict build_info() {
  pybind11::dict info;
#ifdef _OPENMP
  info["openmp"] = true;
  info["openmp_version"] = XITE_STR(_OPENMP);
#else
  info["openmp"] = false;
  info["openmp_version"] = pybind11::none();
#endif
#ifdef XITE_WITH_CUDA
  info["cuda"] = true;
  info["cuda_version"] = XITE_STR(XITE_CUDA_VERSION);
#else
  info["cuda"] = false;
  info["cuda_version"] = pybind11::none();
#endif
  info["torch_version"] = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                          std::to_string(TORCH_VERSION_PATCH);
#ifdef __VERSION__
  info["compiler"] = __VERSION__;
#endif
  info["cpu_multiversion"] = xite::cpu::multiversioned();
  info["threads"] = at::get_num_threads();
  info["parallel_backend"] = AT_PARALLEL_OPENMP ? "openmp" : "native";
  return info;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "xite's compiled kernels; the op itself is torch.ops.xite.project_interpolate";
  m.def("build_info", &build_info, "How this library was built (OpenMP, CUDA, versions, threads)");
}
