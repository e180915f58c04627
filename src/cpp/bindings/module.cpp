// The compiled extension. It is built once per instruction-set level (see CMakeLists.txt)
// as _core_<isa>; rnnx/_loader.py imports the best one this CPU can run.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace rnnx::bind {
void register_kernels(py::module_& m);
void register_course(py::module_& m);
void register_dinos(py::module_& m);
}  // namespace rnnx::bind

namespace {
// True when this CPU (and OS) can run the avx2 build: AVX2 and FMA.
bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
#else
  return false;
#endif
}
}  // namespace

PYBIND11_MODULE(RNNX_MODULE_NAME, m) {
  m.doc() = "rnnx compiled kernels (" RNNX_ISA_NAME " build)";
  m.attr("isa") = RNNX_ISA_NAME;
  m.attr("__version__") = RNNX_VERSION;
  m.def("cpu_has_avx2_fma", &cpu_has_avx2_fma,
        "Whether this CPU supports the instructions of the avx2 build (AVX2 and FMA).");
  rnnx::bind::register_kernels(m);
  rnnx::bind::register_course(m);
  rnnx::bind::register_dinos(m);
}
