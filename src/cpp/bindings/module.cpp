// The compiled extension. It is built once per instruction-set level (see CMakeLists.txt)
// as _core_<isa>; rnnx/_loader.py imports the best one this CPU can run.
#include <pybind11/pybind11.h>

#include <string>

#include "rnnx/memory.hpp"
#include "rnnx/parallel.hpp"

namespace py = pybind11;

namespace rnnx::bind {
void register_kernels(py::module_& m);
void register_course(py::module_& m);
void register_dinos(py::module_& m);
void register_heads(py::module_& m);
void register_tagger(py::module_& m);
}  // namespace rnnx::bind

namespace {
// What this CPU can run, as a dict of flags (GCC/Clang builtins; False elsewhere).
py::dict cpu_features() {
  py::dict f;
  bool avx2 = false, fma = false, avx512 = false, amd = false, intel = false;
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  __builtin_cpu_init();
  avx2 = __builtin_cpu_supports("avx2");
  fma = __builtin_cpu_supports("fma");
  avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  amd = __builtin_cpu_is("amd");
  intel = __builtin_cpu_is("intel");
#endif
  f["avx2"] = avx2;
  f["fma"] = fma;
  f["avx512"] = avx512;  // F, DQ, VL and BW
  f["amd"] = amd;
  f["intel"] = intel;
  return f;
}
}  // namespace

PYBIND11_MODULE(RNNX_MODULE_NAME, m) {
  m.doc() = "rnnx compiled kernels (" RNNX_ISA_NAME " build)";
  m.attr("isa") = RNNX_ISA_NAME;
  m.attr("__version__") = RNNX_VERSION;
  m.attr("eigen_version") = std::to_string(EIGEN_WORLD_VERSION) + "." +
                            std::to_string(EIGEN_MAJOR_VERSION) + "." +
                            std::to_string(EIGEN_MINOR_VERSION);
  m.def("cpu_features", &cpu_features, "The instruction sets this CPU supports.");
  m.def("num_threads", &rnnx::num_threads, "Threads the kernels use (the caller included).");
  m.def("set_num_threads", &rnnx::set_num_threads, py::arg("n"),
        "Set the threads the kernels use; results do not depend on it.");
  m.def("_pool_self_check", &rnnx::pool_self_check, py::arg("rounds"),
        "Test hook: parallel regions of varying task counts; tasks not run exactly once.");
  m.def("release_memory", &rnnx::release_cached,
        "Return the kernels' cached free blocks to the system; the bytes released.");
  // A request too large for this machine: MemoryError with the size it needed (pybind11
  // would turn the std::bad_alloc it derives from into a MemoryError without one).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const rnnx::AllocationTooLarge& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });
  rnnx::bind::register_kernels(m);
  rnnx::bind::register_course(m);
  rnnx::bind::register_dinos(m);
  rnnx::bind::register_heads(m);
  rnnx::bind::register_tagger(m);
}
