// Arguments of the sequence kernels and models: float arrays of an exact shape, variable
// lengths, the nonlinearity's name, and index input (integer x, a one-hot per value).
// Shared by register_kernels.cpp and register_tagger.cpp.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "bindings/arrays.hpp"

namespace rnnx::bind {

using ssize = py::ssize_t;

// A NumPy byte-order character of this machine's order: '=' (native), '|' (not
// applicable), or the explicit one of this machine ('<' little-endian, '>' big-endian).
inline bool native_order(char c) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return c == '=' || c == '|' || c == '>';
#else
  return c == '=' || c == '|' || c == '<';
#endif
}

// obj's data when obj is an ndarray of S in native byte order, of exactly `shape`,
// C-contiguous and aligned (n: its size), read from NumPy's array struct; else nullptr.
template <typename S, typename Dims>
inline const S* exact_array(PyObject* o, const Dims& shape, Index& n) {
  const auto& api = py::detail::npy_api::get();
  if (!api.PyArray_Check_(o)) return nullptr;
  const auto* a = py::detail::array_proxy(o);
  const auto* descr = py::detail::array_descriptor_proxy(a->descr);
  constexpr int type_num = std::is_same_v<S, float> ? py::detail::npy_api::NPY_FLOAT_
                                                    : py::detail::npy_api::NPY_DOUBLE_;
  if (descr->type_num != type_num || !native_order(descr->byteorder) ||
      a->nd != int(shape.size()) || !(a->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) ||
      !is_aligned(a->data))
    return nullptr;
  n = 1;
  int i = 0;
  for (const ssize d : shape) {
    if (a->dimensions[i++] != d) return nullptr;
    n *= d;
  }
  return reinterpret_cast<const S*>(a->data);
}

// An array of dtype S and exactly `shape` (TypeError / ValueError otherwise), finite,
// as an aligned C-contiguous block (see Aligned). The shape as a Shape, or as a braced
// list (no vector built: at W_tiny's sizes the seven built per Tagger call were 1-2% of
// its instructions).
//
// The usual argument is checked first straight from NumPy's array struct: an ndarray of
// S in native byte order, of this shape, C-contiguous and aligned, used in place. Each of
// a W_tiny Tagger call's seven arrays took about 260 instructions through the general
// checks below (a py::array and a py::dtype, refcounts, flags and shape one call each);
// anything else still goes there, to be copied or refused with its message.
template <typename S, typename Dims>
inline Aligned<S> in_shaped(py::handle obj, const char* name, const Dims& shape,
                            const char* dims) {
  static_assert(std::is_same_v<S, float> || std::is_same_v<S, double>);
  Index n = 0;
  if (const S* p = exact_array<S>(obj.ptr(), shape, n)) {
    require_finite(p, n, name);
    Aligned<S> out;
    out.ptr = p;
    return out;
  }
  py::array a = as_array<S>(obj, name);
  require_shape(a, name, shape, dims);
  Aligned<S> out = aligned<S>(a);
  require_finite(out.ptr, Index(a.size()), name);
  return out;
}
template <typename S>
inline Aligned<S> in(py::handle obj, const char* name, const Shape& shape, const char* dims) {
  return in_shaped<S>(obj, name, shape, dims);
}
template <typename S>
inline Aligned<S> in(py::handle obj, const char* name, std::initializer_list<ssize> shape,
                     const char* dims) {
  return in_shaped<S>(obj, name, shape, dims);
}
template <typename S>
inline Aligned<S> in_opt(py::handle obj, const char* name, const Shape& shape, const char* dims) {
  return obj.is_none() ? Aligned<S>{} : in<S>(obj, name, shape, dims);
}
template <typename S>
inline Aligned<S> in_opt(py::handle obj, const char* name, std::initializer_list<ssize> shape,
                         const char* dims) {
  return obj.is_none() ? Aligned<S>{} : in<S>(obj, name, shape, dims);
}

// lengths (B,) of an integer dtype, values in 1..T, as int64; empty for None.
inline std::vector<std::int64_t> lengths_arg(py::handle obj, ssize B, ssize T) {
  std::vector<std::int64_t> out;
  if (obj.is_none()) return out;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("lengths must be a numpy.ndarray of integers, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  auto a = py::reinterpret_borrow<py::array>(obj);
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error("lengths must have an integer dtype, got " + std::string(py::str(a.dtype())));
  require_shape(a, "lengths", {B}, "(B,)");
  const auto c = int64_c(a);
  out.assign(c.data(), c.data() + B);
  for (ssize b = 0; b < B; ++b)
    if (out[size_t(b)] < 1 || out[size_t(b)] > T)
      throw py::value_error("lengths[" + std::to_string(b) + "] = " + std::to_string(out[size_t(b)]) +
                            " is outside 1..T = 1.." + std::to_string(T));
  return out;
}
inline const std::int64_t* ptr_or_null(const std::vector<std::int64_t>& v) {
  return v.empty() ? nullptr : v.data();
}

inline Nonlinearity parse_nonlinearity(const std::string& s) {
  if (s == "tanh") return Nonlinearity::Tanh;
  if (s == "relu") return Nonlinearity::Relu;
  throw py::value_error("nonlinearity must be 'tanh' or 'relu', got '" + s + "'");
}

// Index input: x of an integer dtype, (T, B), each value the index of a one-hot input.
inline bool is_index_input(py::handle x) {
  if (!py::isinstance<py::array>(x)) return false;
  const char kind = py::reinterpret_borrow<py::array>(x).dtype().kind();
  return kind == 'i' || kind == 'u';
}

// x's values as int64 (T*B), each checked in 0..D-1, with d.ids pointing at them; empty
// (and d.ids untouched) for dense input.
inline std::vector<std::int64_t> index_input(py::handle x, SeqDims& d) {
  std::vector<std::int64_t> out;
  if (!is_index_input(x)) return out;
  const auto c = int64_c(py::reinterpret_borrow<py::array>(x));
  out.assign(c.data(), c.data() + d.T * d.B);
  for (size_t r = 0; r < out.size(); ++r)
    if (out[r] < 0 || out[r] >= d.D)
      throw py::value_error("x[" + std::to_string(Index(r) / d.B) + ", " +
                            std::to_string(Index(r) % d.B) + "] = " + std::to_string(out[r]) +
                            " is outside 0..D-1 = 0.." + std::to_string(d.D - 1) +
                            " (index input: w_ih has D columns)");
  d.ids = out.data();
  return out;
}

inline SeqDims seq_dims(py::handle x_obj, py::handle w_ih_obj, ssize gates) {
  py::array x = py::reinterpret_borrow<py::array>(x_obj);
  const bool index = is_index_input(x_obj);
  if (index)
    require_ndim(x, "x", 2, "(T, B) for index input");
  else
    require_ndim(x, "x", 3, "(T, B, D)");
  py::array w = py::reinterpret_borrow<py::array>(w_ih_obj);
  require_ndim(w, "w_ih", 2, "(G*H, D)");
  if (w.shape(0) == 0 || w.shape(0) % gates)
    throw py::value_error("w_ih must have " + std::to_string(gates) + "*H rows, got shape " +
                          shape_str(w));
  return SeqDims{x.shape(0), x.shape(1), index ? w.shape(1) : x.shape(2), w.shape(0) / gates};
}

}  // namespace rnnx::bind
