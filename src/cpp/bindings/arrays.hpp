// Boundary helpers for the bindings: check what Python handed over (type, dtype, rank,
// shape, finiteness) with messages that name the argument, copy strided NumPy data into
// the core's time-major buffers, and wrap buffers as NumPy arrays or views.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rnnx/common.hpp"
#include "rnnx/memory.hpp"
#include "rnnx/packets.hpp"

namespace rnnx::bind {

namespace py = pybind11;
using Shape = std::vector<py::ssize_t>;

// An argument's name for messages: "x", or "parameters['Wax']" from ("parameters", "Wax").
// The string is built only when a message needs it (never on the success path).
class Name {
 public:
  Name(const char* s) : base_(s) {}                    // NOLINT: implicit by design
  Name(std::string s) : owned_(std::move(s)) {}        // NOLINT
  Name(const char* dict, const char* key) : base_(dict), key_(key) {}
  std::string str() const {
    if (!base_) return owned_;
    return key_ ? std::string(base_) + "['" + key_ + "']" : std::string(base_);
  }
  friend std::string operator+(const Name& n, const std::string& s) { return n.str() + s; }
  friend std::string operator+(const Name& n, const char* s) { return n.str() + s; }

 private:
  const char* base_ = nullptr;
  const char* key_ = nullptr;
  std::string owned_;
};

// The Python str of a C string literal, made once and kept, so that dict lookups with it
// neither allocate nor hash again. Called with the GIL held.
inline py::handle key_str(const char* s) {
  static std::unordered_map<const char*, PyObject*> cache;
  auto it = cache.find(s);
  if (it != cache.end()) return it->second;
  PyObject* o = PyUnicode_InternFromString(s);
  if (!o) throw py::error_already_set();
  cache.emplace(s, o);
  return o;
}

// d[key] = value with an interned key.
inline void dict_set(py::dict& d, const char* key, py::handle value) {
  if (PyDict_SetItem(d.ptr(), key_str(key).ptr(), value.ptr()) != 0) throw py::error_already_set();
}

// d[key] as an ndarray of dtype S; KeyError naming dict_name and key when it is missing.
template <typename S>
py::array dict_array(const py::dict& d, const char* key, const char* dict_name);

inline std::string shape_str(const py::ssize_t* s, py::ssize_t n) {
  std::string out = "(";
  for (py::ssize_t i = 0; i < n; ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + (n == 1 ? ",)" : ")");
}
inline std::string shape_str(const Shape& s) { return shape_str(s.data(), py::ssize_t(s.size())); }
inline std::string shape_str(const py::array& a) { return shape_str(a.shape(), a.ndim()); }

template <typename S>
const char* dtype_name() {
  return sizeof(S) == 8 ? "float64" : "float32";
}

// obj as an ndarray of scalar type S, values untouched. TypeError for anything else
// (lists, integer or object arrays, the other float width: no silent casts).
template <typename S>
py::array as_array(py::handle obj, const Name& name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(name + " must be a numpy.ndarray of dtype " + dtype_name<S>() + ", got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  auto a = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = a.dtype();
  if (dt.kind() != 'f' || dt.itemsize() != py::ssize_t(sizeof(S)) || dt.byteorder() == '>')
    throw py::type_error(name + " must have dtype " + dtype_name<S>() + ", got " +
                         std::string(py::str(dt)));
  return a;
}

template <typename S>
py::array dict_array(const py::dict& d, const char* key, const char* dict_name) {
  PyObject* v = PyDict_GetItemWithError(d.ptr(), key_str(key).ptr());
  if (!v) {
    if (PyErr_Occurred()) throw py::error_already_set();
    throw py::key_error(std::string(dict_name) + " is missing the key '" + key + "'");
  }
  return as_array<S>(v, Name(dict_name, key));
}

inline void require_shape(const py::array& a, const Name& name, const Shape& shape,
                          const char* dims);
// Raise ValueError unless a has exactly the given shape; `dims` names the dimensions,
// e.g. "(n_a, m)".
inline void require_shape(const py::array& a, const Name& name,
                          std::initializer_list<py::ssize_t> shape, const char* dims) {
  bool ok = a.ndim() == py::ssize_t(shape.size());
  py::ssize_t i = 0;
  for (auto it = shape.begin(); ok && it != shape.end(); ++it, ++i) ok = a.shape(i) == *it;
  if (!ok)
    throw py::value_error(name + " must have shape " + dims + " = " + shape_str(Shape(shape)) +
                          ", got " + shape_str(a));
}

inline void require_shape(const py::array& a, const Name& name, const Shape& shape,
                          const char* dims) {
  bool ok = a.ndim() == py::ssize_t(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(py::ssize_t(i)) == shape[i];
  if (!ok)
    throw py::value_error(name + " must have shape " + dims + " = " + shape_str(shape) + ", got " +
                          shape_str(a));
}

inline void require_ndim(const py::array& a, const Name& name, py::ssize_t ndim,
                         const char* dims) {
  if (a.ndim() != ndim)
    throw py::value_error(name + " must be a " + std::to_string(ndim) + "-D array of shape " +
                          dims + ", got shape " + shape_str(a));
  for (py::ssize_t i = 0; i < ndim; ++i)
    if (a.shape(i) == 0)
      throw py::value_error(name + " must not be empty, got shape " + shape_str(a));
}

// pybind11's array::ensure returns a null array (and clears the Python error) when the
// conversion fails, which for a float or integer array means its C-ordered copy could not
// be allocated (e.g. a huge zero-stride view). Raise MemoryError with the size instead of
// handing on a null array.
template <typename A>
A ensured(A converted, const py::array& from) {
  if (converted) return converted;
  const size_t bytes = size_t(from.size()) * size_t(std::max<py::ssize_t>(from.itemsize(), 8));
  if (physical_memory() && bytes > physical_memory()) throw AllocationTooLarge(bytes);
  PyErr_NoMemory();
  throw py::error_already_set();
}

// a itself when it is C-contiguous and its items are naturally aligned, else such a copy
// (reading a double from an address that is not a multiple of 8 is undefined behaviour).
constexpr int kNpyAligned = 0x0100;  // NumPy's NPY_ARRAY_ALIGNED
inline py::array c_order(const py::array& a) {
  return ensured(py::array::ensure(a, py::array::c_style | kNpyAligned), a);
}

// Element strides of a (in units of S); arrays whose byte strides are not multiples of
// the item size are copied to C order first.
template <typename S>
py::array element_strided(py::array a) {
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(S) != 0) return c_order(a);
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.strides(i) % py::ssize_t(sizeof(S)) != 0)
      return c_order(a);
  return a;
}

// An integer array as a C-contiguous, aligned int64 array: the array itself when it
// already is one, without asking NumPy (its conversion call costs about 1,000 instructions
// even when it copies nothing: 3% of a Tagger call at W_tiny's sizes), else a converted copy.
inline py::array_t<std::int64_t> int64_c(const py::array& a) {
  const py::dtype dt = a.dtype();
  constexpr int want = py::array::c_style | kNpyAligned;
  if (dt.kind() == 'i' && dt.itemsize() == 8 && dt.byteorder() == '=' &&  // native order
      (a.flags() & want) == want)
    return py::reinterpret_borrow<py::array_t<std::int64_t>>(a);
  return ensured(py::array_t<std::int64_t, py::array::c_style | py::array::forcecast | kNpyAligned>::ensure(a), a);
}

// An integer array (any integer dtype; bool and float refused with TypeError) as a
// C-contiguous int64 array, held here while the core reads it.
inline py::array_t<std::int64_t> int_array(py::handle obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy.ndarray of integers, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  const auto a = py::reinterpret_borrow<py::array>(obj);
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(std::string(name) + " must have an integer dtype, got " +
                         std::string(py::str(a.dtype())));
  return int64_c(a);
}

// The same with exactly `shape` (a Shape or a braced list); None (where optional) gives an
// empty array.
template <typename Dims>
py::array_t<std::int64_t> int_arg_shaped(py::handle obj, const char* name, const Dims& shape,
                                         const char* dims, bool optional) {
  if (optional && obj.is_none()) return py::array_t<std::int64_t>();
  auto a = int_array(obj, name);
  require_shape(a, name, shape, dims);
  return a;
}
inline py::array_t<std::int64_t> int_arg(py::handle obj, const char* name, const Shape& shape,
                                         const char* dims, bool optional = false) {
  return int_arg_shaped(obj, name, shape, dims, optional);
}
inline py::array_t<std::int64_t> int_arg(py::handle obj, const char* name,
                                         std::initializer_list<py::ssize_t> shape,
                                         const char* dims, bool optional = false) {
  return int_arg_shaped(obj, name, shape, dims, optional);
}
// Whether p[0..n) are all finite: x - x is 0 for a finite x and NaN for NaN or infinity,
// so one vectorised sum answers (a test per element with an early exit is not vectorised:
// it measured 14% of the cross-entropy's time, and 2-3% of a whole LSTM training step).
// Below 64 values a packet loop does the same (Eigen's reduction set-up took about 60
// instructions per array, for the 5 to 25 values of each of W_tiny's seven).
template <typename S>
bool all_finite(const S* p, Index n) {
  if (n < 64) {
    using namespace Eigen::internal;
    Packet<S> acc = pset1<Packet<S>>(S(0));
    for_packets<S>(n, [&](const Lanes<S>& l) {
      const Packet<S> v = l.load(p);
      acc = padd(acc, psub(v, v));
    });
    return predux(acc) == S(0);
  }
  const MapConstArr<S> a(p, n);
  return (a - a).sum() == S(0);
}

template <typename S>
void require_finite(const S* p, Index n, const Name& name) {
  if (!all_finite(p, n)) throw py::value_error(name + " contains NaN or infinity");
}

// Releases the GIL for the scope when the work (about `madds` multiply-adds) is big
// enough for another Python thread to use the time; for the tiniest calls the release
// and re-acquisition would cost more than the arithmetic.
class ReleaseGilFor {
 public:
  explicit ReleaseGilFor(double madds) {
    if (madds >= 2e4) release_.emplace();
  }

 private:
  std::optional<py::gil_scoped_release> release_;
};

// The owner of an aligned block given to NumPy arrays: a plain capsule whose destructor
// hands the block back (pybind11's capsule with a C++ destructor keeps and checks more
// state: about 570 instructions per array made and freed; the plain one took 1,450 off a
// W_tiny Tagger training call with its six gradients, callgrind).
inline void release_owned_block(PyObject* capsule) {
  aligned_release(PyCapsule_GetPointer(capsule, nullptr));
}
inline py::object owner_of(void* block) {
  PyObject* capsule = PyCapsule_New(block, nullptr, release_owned_block);
  if (!capsule) {
    aligned_release(block);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(capsule);
}

// The number of elements of a shape; AllocationTooLarge when it overflows (the sizes can
// come from zero-stride views or from ints the caller passed, not only from real arrays).
inline size_t checked_elements(const py::ssize_t* dims, int ndim) {
  size_t n = 1;
  for (int i = 0; i < ndim; ++i) {
    const py::ssize_t d = dims[i];
    if (d < 0) throw py::value_error("negative dimension " + std::to_string(d));
    if (d && n > SIZE_MAX / size_t(d)) throw AllocationTooLarge(SIZE_MAX);
    n *= size_t(d);
  }
  return n;
}

// One fresh array over data that `owner` keeps alive (the array takes a reference).
template <typename S>
py::object array_over(S* data, const py::ssize_t* dims, int ndim, const py::object& owner) {
  auto& api = py::detail::npy_api::get();
  PyObject* array = api.PyArray_NewFromDescr_(  // takes the descriptor's reference
      api.PyArray_Type_, py::dtype::of<S>().release().ptr(), ndim,
      const_cast<Py_intptr_t*>(reinterpret_cast<const Py_intptr_t*>(dims)), nullptr, data,
      py::detail::npy_api::NPY_ARRAY_WRITEABLE_, nullptr);
  if (!array) throw py::error_already_set();
  if (api.PyArray_SetBaseObject_(array, owner.inc_ref().ptr()) != 0) {  // steals it
    Py_DECREF(array);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(array);
}

// A fresh C-contiguous array of the given shape (uninitialised) whose data starts on a
// kAlign-byte boundary, so that kernels write and later read it at the same alignment.
// Made through NumPy's C API (one call makes the array, one gives it its owner) from the
// shape as it is: pybind11's array constructor built three vectors and a dtype for each
// array, about 1,200 instructions per array, a tenth of a W_tiny Tagger training call
// with its six gradients (callgrind).
template <typename S>
py::array_t<S> empty_dims(const py::ssize_t* dims, int ndim) {
  const size_t n = checked_elements(dims, ndim);
  checked_bytes(n, sizeof(S));
  S* data = AlignedAllocator<S>().allocate(n);
  const py::object owner = owner_of(data);  // frees data on a throw
  return py::reinterpret_steal<py::array_t<S>>(
      array_over<S>(data, dims, ndim, owner).release());
}

// The shape of one of a call's outputs, for empty_group.
struct OutShape {
  bool present;  // false: the output is None
  int ndim;
  py::ssize_t dims[3];
};

// A call's outputs (None where absent) as fresh C-contiguous arrays that start on
// kAlign boundaries, with ptr[i] their data (nullptr where absent). Small outputs share
// one block and one owner: a W_tiny training call returns six gradients, and one block
// for them took 1.4K off its 52K instructions (callgrind). The block lives while any of
// them does, so outputs of kGroupBytes and more in all get a block each, as empty()
// makes them.
constexpr size_t kGroupBytes = size_t(64) << 10;
template <typename S, size_t N>
std::array<py::object, N> empty_group(const OutShape (&shape)[N], S* (&ptr)[N]) {
  constexpr size_t per_line = kAlign / sizeof(S);
  size_t offset[N], total = 0;  // elements, while under kGroupBytes
  bool grouped = true;
  for (size_t i = 0; i < N && grouped; ++i) {
    offset[i] = total;
    if (!shape[i].present) continue;
    const size_t n = checked_elements(shape[i].dims, shape[i].ndim);
    grouped = n < kGroupBytes / sizeof(S);
    if (grouped) total += (n + per_line - 1) / per_line * per_line;
    grouped = grouped && total < kGroupBytes / sizeof(S);
  }
  std::array<py::object, N> out;
  if (!grouped) {
    for (size_t i = 0; i < N; ++i) {
      ptr[i] = nullptr;
      out[i] = py::none();
      if (!shape[i].present) continue;
      auto a = empty_dims<S>(shape[i].dims, shape[i].ndim);
      ptr[i] = a.mutable_data();
      out[i] = std::move(a);
    }
    return out;
  }
  S* block = AlignedAllocator<S>().allocate(total);
  const py::object owner = owner_of(block);  // frees the block on a throw
  for (size_t i = 0; i < N; ++i) {
    ptr[i] = shape[i].present ? block + offset[i] : nullptr;
    out[i] = shape[i].present ? array_over<S>(ptr[i], shape[i].dims, shape[i].ndim, owner)
                              : py::none();
  }
  return out;
}

template <typename S>
py::array_t<S> empty(const Shape& shape) {
  return empty_dims<S>(shape.data(), int(shape.size()));
}
template <typename S>
py::array_t<S> empty(std::initializer_list<py::ssize_t> shape) {
  return empty_dims<S>(shape.begin(), int(shape.size()));
}

// A fresh aligned buffer of n elements seen through one array of the given shape and
// element strides (e.g. a time-major buffer shown in the course's layout), without a
// second array object for the view.
template <typename S>
struct Strided {
  py::array array;
  S* data;
};
template <typename S>
Strided<S> empty_strided(const Shape& shape, const Shape& elem_strides, py::ssize_t n) {
  checked_bytes(size_t(n), sizeof(S));
  S* data = AlignedAllocator<S>().allocate(size_t(n));
  py::object owner = owner_of(data);
  Shape bytes(elem_strides.size());
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = elem_strides[i] * py::ssize_t(sizeof(S));
  return {py::array(py::dtype::of<S>(), shape, bytes, data, owner), data};
}

// An input's data as a C-contiguous, kAlign-aligned block: the array's own memory when
// it already is one, else an aligned copy held here.
template <typename S>
struct Aligned {
  const S* ptr = nullptr;
  AlignedVec<S> copy;
};
template <typename S>
Aligned<S> aligned(const py::array& a) {
  Aligned<S> out;
  if ((a.flags() & py::array::c_style) && is_aligned(a.data())) {
    out.ptr = static_cast<const S*>(a.data());
    return out;
  }
  if (a.flags() & py::array::c_style) {  // bytes copied: the items may be misaligned
    out.copy.resize(size_t(a.size()));
    if (a.size()) std::memcpy(out.copy.data(), a.data(), size_t(a.size()) * sizeof(S));
  } else {
    const py::array c = c_order(a);
    const S* src = static_cast<const S*>(c.data());
    out.copy.assign(src, src + c.size());
  }
  out.ptr = out.copy.data();
  return out;
}

// A view of `base` with the given shape and element strides, starting at ptr.
template <typename S>
py::array view(const py::array& base, const S* ptr, const Shape& shape, const Shape& elem_strides) {
  Shape bytes(elem_strides.size());
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = elem_strides[i] * py::ssize_t(sizeof(S));
  return py::array(py::dtype::of<S>(), shape, bytes, ptr, base);
}

// Copy a (n, m, T) array with any strides into a time-major (T, m, n) buffer:
// dst[t, j, i] = src[i, j, t]. T_used may be smaller than the source's T. The copy goes
// in 16 x 16 tiles of (t, i) so that both sides touch whole cache lines.
template <typename S>
void to_time_major(const py::array& src_any, S* dst, py::ssize_t T_used, const Name& name,
                   bool check_finite) {
  const py::array src = element_strided<S>(src_any);
  const py::ssize_t n = src.shape(0), m = src.shape(1);
  const py::ssize_t s0 = src.strides(0) / py::ssize_t(sizeof(S)),
                    s1 = src.strides(1) / py::ssize_t(sizeof(S)),
                    s2 = src.strides(2) / py::ssize_t(sizeof(S));
  const S* p = static_cast<const S*>(src.data());
  constexpr py::ssize_t tile = 16;
  bool finite = true;
  if (n <= tile && T_used <= tile) {  // small: one tile per j, no tiling bookkeeping
    for (py::ssize_t t = 0; t < T_used; ++t)
      for (py::ssize_t j = 0; j < m; ++j)
        for (py::ssize_t i = 0; i < n; ++i) {
          const S v = p[i * s0 + j * s1 + t * s2];
          finite &= std::isfinite(v);
          *dst++ = v;
        }
    if (check_finite && !finite) throw py::value_error(name + " contains NaN or infinity");
    return;
  }
  for (py::ssize_t j = 0; j < m; ++j)
    for (py::ssize_t t0 = 0; t0 < T_used; t0 += tile)
      for (py::ssize_t i0 = 0; i0 < n; i0 += tile) {
        const py::ssize_t t1 = std::min(T_used, t0 + tile), i1 = std::min(n, i0 + tile);
        for (py::ssize_t i = i0; i < i1; ++i)
          for (py::ssize_t t = t0; t < t1; ++t) {
            const S v = p[i * s0 + j * s1 + t * s2];
            finite &= std::isfinite(v);
            dst[(t * m + j) * n + i] = v;
          }
      }
  if (check_finite && !finite) throw py::value_error(name + " contains NaN or infinity");
}

// A new C-contiguous (n, m, T) array from a time-major (T, m, n) buffer:
// out[i, j, t] = src[t, j, i] (the inverse of to_time_major, tiled the same way).
template <typename S>
py::array_t<S> from_time_major(const S* src, py::ssize_t T, py::ssize_t m, py::ssize_t n) {
  py::array_t<S> out = empty<S>({n, m, T});
  S* dst = out.mutable_data();
  constexpr py::ssize_t tile = 16;
  for (py::ssize_t j = 0; j < m; ++j)
    for (py::ssize_t i0 = 0; i0 < n; i0 += tile)
      for (py::ssize_t t0 = 0; t0 < T; t0 += tile) {
        const py::ssize_t t1 = std::min(T, t0 + tile), i1 = std::min(n, i0 + tile);
        for (py::ssize_t t = t0; t < t1; ++t)
          for (py::ssize_t i = i0; i < i1; ++i) dst[(i * m + j) * T + t] = src[(t * m + j) * n + i];
      }
  return out;
}

// Copy a 2-D (n, m) array with any strides into dst as (m, n): dst[j, i] = src[i, j].
template <typename S>
void transpose_2d(const py::array& src_any, S* dst, const Name& name, bool check_finite) {
  const py::array src = element_strided<S>(src_any);
  const py::ssize_t n = src.shape(0), m = src.shape(1);
  const py::ssize_t s0 = src.strides(0) / py::ssize_t(sizeof(S)),
                    s1 = src.strides(1) / py::ssize_t(sizeof(S));
  const S* p = static_cast<const S*>(src.data());
  bool finite = true;
  for (py::ssize_t j = 0; j < m; ++j)
    for (py::ssize_t i = 0; i < n; ++i) {
      const S v = p[i * s0 + j * s1];
      finite &= std::isfinite(v);
      *dst++ = v;
    }
  if (check_finite && !finite) throw py::value_error(name + " contains NaN or infinity");
}

// Copy a 2-D (r, c) array with any strides into dst in C order (r, c).
template <typename S>
void copy_2d(const py::array& src_any, S* dst, const Name& name, bool check_finite) {
  const py::array src = element_strided<S>(src_any);
  const py::ssize_t r = src.shape(0), c = src.shape(1);
  const py::ssize_t s0 = src.strides(0) / py::ssize_t(sizeof(S)),
                    s1 = src.strides(1) / py::ssize_t(sizeof(S));
  const S* p = static_cast<const S*>(src.data());
  bool finite = true;
  for (py::ssize_t i = 0; i < r; ++i)
    for (py::ssize_t j = 0; j < c; ++j) {
      const S v = p[i * s0 + j * s1];
      finite &= std::isfinite(v);
      *dst++ = v;
    }
  if (check_finite && !finite) throw py::value_error(name + " contains NaN or infinity");
}

}  // namespace rnnx::bind
