// Bindings for the heads and losses (rnnx/heads.hpp): dense, embedding, softmax
// cross-entropy and last-step pooling, float32 and float64, as the submodule `heads`.
// The Python layer (rnnx/heads.py) validates first; these checks repeat the essentials
// (types, dtypes, shapes, finiteness; the core checks ids, targets and lengths) so that a
// bad call can never read out of bounds.
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "rnnx/heads.hpp"

namespace rnnx::bind {
namespace {

using ssize = py::ssize_t;

// The dtype of the float array that decides a call's precision: float32 (true) or
// float64 (false); TypeError naming the argument for anything else.
bool is_f32(py::handle a, const char* name) {
  if (!py::isinstance<py::array>(a))
    throw py::type_error(std::string(name) +
                         " must be a numpy.ndarray of dtype float32 or float64, got " +
                         std::string(py::str(py::type::handle_of(a).attr("__name__"))));
  const py::dtype dt = py::reinterpret_borrow<py::array>(a).dtype();
  if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8) || dt.byteorder() == '>')
    throw py::type_error(std::string(name) + " must have dtype float32 or float64, got " +
                         std::string(py::str(dt)));
  return dt.itemsize() == 4;
}

// (all_finite: arrays.hpp)
template <typename S>
void check_finite(const S* p, Index n, const char* name) {
  if (!all_finite(p, n)) throw py::value_error(std::string(name) + " contains NaN or infinity");
}

// An array of dtype S (TypeError otherwise) with exactly `shape` (ValueError otherwise),
// finite, as an aligned C-contiguous block.
template <typename S>
Aligned<S> in(py::handle obj, const char* name, const Shape& shape, const char* dims) {
  const py::array a = as_array<S>(obj, name);
  require_shape(a, name, shape, dims);
  Aligned<S> out = aligned<S>(a);
  check_finite(out.ptr, Index(a.size()), name);
  return out;
}

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

// (int_array, int_arg: arrays.hpp)
const std::int64_t* ptr_or_null(const py::array_t<std::int64_t>& a) {
  return a.size() ? a.data() : nullptr;
}

// mask (the shape of targets): bool, or any integer or float dtype holding only 0 and 1,
// as one byte per position (1 kept, 0 masked); empty for None.
std::vector<std::uint8_t> mask_arg(py::handle obj, const Shape& shape) {
  std::vector<std::uint8_t> out;
  if (obj.is_none()) return out;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("mask must be a numpy.ndarray of bool or 0/1 values, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  const auto a = py::reinterpret_borrow<py::array>(obj);
  const char kind = a.dtype().kind();
  if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f')
    throw py::type_error("mask must have dtype bool (or hold 0 and 1), got " +
                         std::string(py::str(a.dtype())));
  require_shape(a, "mask", shape, "targets.shape");
  const auto d = ensured(py::array_t<double, py::array::c_style | py::array::forcecast | kNpyAligned>::ensure(a), a);
  out.resize(size_t(d.size()));
  for (ssize i = 0; i < d.size(); ++i) {
    const double v = d.data()[i];
    if (v != 0 && v != 1)
      throw py::value_error("mask must hold only 0 and 1 (or False and True), got " +
                            std::to_string(v) + " at flat index " + std::to_string(i));
    out[size_t(i)] = v != 0;
  }
  return out;
}

ssize positive_int(py::handle obj, const char* name) {
  if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr()))
    throw py::type_error(std::string(name) + " must be an int, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  PyObject* ix = PyNumber_Index(obj.ptr());
  if (!ix) throw py::error_already_set();
  const long long v = PyLong_AsLongLong(ix);
  Py_DECREF(ix);
  if (v == -1 && PyErr_Occurred()) {  // beyond 64 bits
    PyErr_Clear();
    throw py::value_error(std::string(name) + " = " + std::string(py::str(obj)) +
                          " is too large");
  }
  if (v < 1) throw py::value_error(std::string(name) + " must be >= 1, got " + std::to_string(v));
  return v;
}

void require_nonempty(const py::array& a, const char* name) {
  for (ssize i = 0; i < a.ndim(); ++i)
    if (a.shape(i) == 0)
      throw py::value_error(std::string(name) + " must not be empty, got shape " + shape_str(a));
}

// ---- dense ------------------------------------------------------------------------------

// The shapes of a dense call: x (..., F), weight (O, F); N = the product of x's leading
// dimensions (possibly 0).
struct DenseDims {
  Shape lead;  // x.shape[:-1]
  ssize N, F, O;
};
template <typename S>
DenseDims dense_dims(py::handle x_obj, py::handle w_obj) {
  const py::array x = as_array<S>(x_obj, "x");
  const py::array w = as_array<S>(w_obj, "weight");
  if (x.ndim() < 1 || x.shape(x.ndim() - 1) == 0)
    throw py::value_error("x must have shape (..., F) with F >= 1, got " + shape_str(x));
  const ssize F = x.shape(x.ndim() - 1);
  if (w.ndim() != 2 || w.shape(0) == 0 || w.shape(1) != F)
    throw py::value_error("weight must have shape (O, F) = (O, " + std::to_string(F) +
                          ") with O >= 1 for x of shape " + shape_str(x) + ", got " + shape_str(w));
  DenseDims d{Shape(x.shape(), x.shape() + x.ndim() - 1), 1, F, w.shape(0)};
  for (ssize s : d.lead) d.N *= s;
  return d;
}

// dense_forward(x, weight, bias) -> y (..., O)
template <typename S>
py::array h_dense_forward(py::handle x, py::handle weight, py::handle bias) {
  const DenseDims d = dense_dims<S>(x, weight);
  Shape xs = d.lead, ys = d.lead;
  xs.push_back(d.F);
  ys.push_back(d.O);
  const Aligned<S> xp = in<S>(x, "x", xs, "(..., F)");
  const Aligned<S> wp = in<S>(weight, "weight", {d.O, d.F}, "(O, F)");
  const Aligned<S> bp = bias.is_none() ? Aligned<S>{} : in<S>(bias, "bias", {d.O}, "(O,)");
  auto y = empty<S>(ys);
  S* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    dense_forward<S>(d.N, d.F, d.O, xp.ptr, wp.ptr, bp.ptr, yp);
  }
  return std::move(y);
}

// dense_backward(dy, x, weight, bias_present) -> (dx, dweight, dbias or None)
template <typename S>
py::tuple h_dense_backward(py::handle dy, py::handle x, py::handle weight, bool bias_present) {
  const DenseDims d = dense_dims<S>(x, weight);
  Shape xs = d.lead, ys = d.lead;
  xs.push_back(d.F);
  ys.push_back(d.O);
  const Aligned<S> dyp = in<S>(dy, "dy", ys, "(..., O)");
  const Aligned<S> xp = in<S>(x, "x", xs, "(..., F)");
  const Aligned<S> wp = in<S>(weight, "weight", {d.O, d.F}, "(O, F)");
  auto dx = empty<S>(xs);
  auto dw = empty<S>({d.O, d.F});
  py::object db = py::none();
  S *dxp = dx.mutable_data(), *dwp = dw.mutable_data(), *dbp = nullptr;
  if (bias_present) {
    auto a = empty<S>({d.O});
    dbp = a.mutable_data();
    db = a;
  }
  {
    py::gil_scoped_release release;
    dense_backward<S>(d.N, d.F, d.O, dyp.ptr, xp.ptr, wp.ptr, dxp, dwp, dbp);
  }
  return py::make_tuple(dx, dw, db);
}

// ---- embedding --------------------------------------------------------------------------

// embedding_forward(ids, weight) -> y (*ids.shape, E)
// The weight is read in place when it is C-contiguous, aligned or not, and only the rows
// that ids select are checked for finiteness (in y): a gather does no arithmetic, so the
// alignment cannot change a result, and a call costs O(N E) rather than O(V E) for
// copying and scanning the whole table.
template <typename S>
py::array h_embedding_forward(py::handle ids, py::handle weight) {
  const py::array w = c_order(as_array<S>(weight, "weight"));
  require_ndim(w, "weight", 2, "(V, E)");
  const ssize V = w.shape(0), E = w.shape(1);
  const auto idp = int_array(ids, "ids");
  const S* wp = static_cast<const S*>(w.data());
  Shape ys = shape_of(idp);
  ys.push_back(E);
  auto y = empty<S>(ys);
  S* yp = y.mutable_data();
  bool finite;
  {
    py::gil_scoped_release release;
    embedding_forward<S>(Index(idp.size()), V, E, idp.data(), wp, yp);
    finite = all_finite(static_cast<const S*>(yp), Index(idp.size()) * E);
  }
  if (!finite)
    throw py::value_error("weight contains NaN or infinity (in a row that ids select)");
  return std::move(y);
}

// embedding_backward(dy, ids, V) -> dweight (V, E)
template <typename S>
py::array h_embedding_backward(py::handle dy, py::handle ids, py::handle V_obj) {
  const py::array g = as_array<S>(dy, "dy");
  const auto idp = int_array(ids, "ids");
  const ssize V = positive_int(V_obj, "V");
  Shape ys = shape_of(idp);
  if (g.ndim() != idp.ndim() + 1 || g.shape(g.ndim() - 1) == 0)
    throw py::value_error("dy must have shape ids.shape + (E,) = " + shape_str(idp) +
                          " + (E,) with E >= 1, got " + shape_str(g));
  const ssize E = g.shape(g.ndim() - 1);
  ys.push_back(E);
  const Aligned<S> dyp = in<S>(dy, "dy", ys, "ids.shape + (E,)");
  auto dw = empty<S>({V, E});
  S* dwp = dw.mutable_data();
  {
    py::gil_scoped_release release;
    embedding_backward<S>(Index(idp.size()), V, E, idp.data(), dyp.ptr, dwp);
  }
  return std::move(dw);
}

// ---- softmax cross-entropy --------------------------------------------------------------

// logits or probs (..., V), e.g. (T, B, V): the leading shape (that of targets and mask),
// the number of rows R (>= 1) and V (>= 1).
struct ClassDims {
  Shape lead;
  ssize R, V;
};
ClassDims class_dims(const py::array& a, const char* name) {
  if (a.ndim() < 1)
    throw py::value_error(std::string(name) + " must have shape (..., V), e.g. (T, B, V), got ()");
  require_nonempty(a, name);
  ClassDims d{Shape(a.shape(), a.shape() + a.ndim() - 1), 1, a.shape(a.ndim() - 1)};
  for (ssize s : d.lead) d.R *= s;
  return d;
}

// softmax_cross_entropy(logits, targets, mask) -> (loss (0-d), probs (..., V))
template <typename S>
py::tuple h_softmax_cross_entropy(py::handle logits, py::handle targets, py::handle mask) {
  const py::array l = as_array<S>(logits, "logits");
  const ClassDims d = class_dims(l, "logits");
  const Aligned<S> lp = in<S>(logits, "logits", shape_of(l), "(..., V)");
  const auto tp = int_arg(targets, "targets", d.lead, "logits.shape[:-1]");
  const std::vector<std::uint8_t> m = mask_arg(mask, d.lead);
  Shape ps = d.lead;
  ps.push_back(d.V);
  auto probs = empty<S>(ps);
  auto loss = empty<S>({});
  S *pp = probs.mutable_data(), *lossp = loss.mutable_data();
  {
    py::gil_scoped_release release;
    softmax_cross_entropy_forward<S>(d.R, d.V, lp.ptr, tp.data(), m.empty() ? nullptr : m.data(),
                                     pp, lossp);
  }
  return py::make_tuple(loss, probs);
}

// softmax_cross_entropy_backward(probs, targets, mask) -> dlogits (..., V)
template <typename S>
py::array h_softmax_cross_entropy_backward(py::handle probs, py::handle targets, py::handle mask) {
  const py::array p = as_array<S>(probs, "probs");
  const ClassDims d = class_dims(p, "probs");
  const Aligned<S> pp = in<S>(probs, "probs", shape_of(p), "(..., V)");
  const auto tp = int_arg(targets, "targets", d.lead, "probs.shape[:-1]");
  const std::vector<std::uint8_t> m = mask_arg(mask, d.lead);
  auto dl = empty<S>(shape_of(p));
  S* dlp = dl.mutable_data();
  {
    py::gil_scoped_release release;
    softmax_cross_entropy_backward<S>(d.R, d.V, pp.ptr, tp.data(), m.empty() ? nullptr : m.data(),
                                      dlp);
  }
  return std::move(dl);
}

// ---- last-step pooling ------------------------------------------------------------------

// last_step_forward(y, lengths) -> out (B, F)
template <typename S>
py::array h_last_step_forward(py::handle y, py::handle lengths) {
  const py::array a = as_array<S>(y, "y");
  require_ndim(a, "y", 3, "(T, B, F)");
  const ssize T = a.shape(0), B = a.shape(1), F = a.shape(2);
  const Aligned<S> yp = in<S>(y, "y", {T, B, F}, "(T, B, F)");
  const auto len = int_arg(lengths, "lengths", {B}, "(B,)", true);
  auto out = empty<S>({B, F});
  S* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    last_step_forward<S>(T, B, F, yp.ptr, ptr_or_null(len), op);
  }
  return std::move(out);
}

// last_step_backward(dout, lengths, T) -> dy (T, B, F)
template <typename S>
py::array h_last_step_backward(py::handle dout, py::handle lengths, py::handle T_obj) {
  const py::array a = as_array<S>(dout, "dout");
  require_ndim(a, "dout", 2, "(B, F)");
  const ssize B = a.shape(0), F = a.shape(1), T = positive_int(T_obj, "T");
  const Aligned<S> dp = in<S>(dout, "dout", {B, F}, "(B, F)");
  const auto len = int_arg(lengths, "lengths", {B}, "(B,)", true);
  auto dy = empty<S>({T, B, F});
  S* dyp = dy.mutable_data();
  {
    py::gil_scoped_release release;
    last_step_backward<S>(T, B, F, dp.ptr, ptr_or_null(len), dyp);
  }
  return std::move(dy);
}

// ---- dense head + softmax cross-entropy, fused --------------------------------------------

// dense_softmax_cross_entropy(x, weight, bias, targets, mask)
//   -> (loss (0-d), dx (..., F), dweight (O, F), dbias (O,) or None)
// The checks of dense_forward and softmax_cross_entropy together (x must have rows: a
// loss needs at least one), then the whole head's forward and backward with the GIL
// released once.
template <typename S>
py::tuple h_dense_softmax_cross_entropy(py::handle x, py::handle weight, py::handle bias,
                                        py::handle targets, py::handle mask) {
  const DenseDims d = dense_dims<S>(x, weight);
  if (d.N == 0)
    throw py::value_error("x must not be empty (a loss needs at least one row), got shape " +
                          shape_str(py::reinterpret_borrow<py::array>(x)));
  Shape xs = d.lead;
  xs.push_back(d.F);
  const Aligned<S> xp = in<S>(x, "x", xs, "(..., F)");
  const Aligned<S> wp = in<S>(weight, "weight", {d.O, d.F}, "(O, F)");
  const Aligned<S> bp = bias.is_none() ? Aligned<S>{} : in<S>(bias, "bias", {d.O}, "(O,)");
  const auto tp = int_arg(targets, "targets", d.lead, "x.shape[:-1]");
  const std::vector<std::uint8_t> m = mask_arg(mask, d.lead);
  auto loss = empty<S>({});
  auto dx = empty<S>(xs);
  auto dw = empty<S>({d.O, d.F});
  py::object db = py::none();
  S *lossp = loss.mutable_data(), *dxp = dx.mutable_data(), *dwp = dw.mutable_data(),
    *dbp = nullptr;
  if (bp.ptr) {
    auto a = empty<S>({d.O});
    dbp = a.mutable_data();
    db = a;
  }
  {
    py::gil_scoped_release release;
    dense_softmax_cross_entropy<S>(d.N, d.F, d.O, xp.ptr, wp.ptr, bp.ptr, tp.data(),
                                   m.empty() ? nullptr : m.data(), lossp, dxp, dwp, dbp);
  }
  return py::make_tuple(loss, dx, dw, db);
}

}  // namespace

void register_heads(py::module_& m) {
  auto h = m.def_submodule(
      "heads", "Heads and losses: dense, embedding, softmax cross-entropy, last-step pooling.");
  using py::arg;
  h.def(
      "dense_forward",
      [](py::handle x, py::handle weight, py::handle bias) {
        return is_f32(x, "x") ? h_dense_forward<float>(x, weight, bias)
                              : h_dense_forward<double>(x, weight, bias);
      },
      arg("x"), arg("weight"), arg("bias").none(true) = py::none(),
      "y = x weightᵀ + bias; x (..., F), weight (O, F), bias (O,) or None -> y (..., O).");
  h.def(
      "dense_backward",
      [](py::handle dy, py::handle x, py::handle weight, bool bias_present) {
        return is_f32(x, "x") ? h_dense_backward<float>(dy, x, weight, bias_present)
                              : h_dense_backward<double>(dy, x, weight, bias_present);
      },
      arg("dy"), arg("x"), arg("weight"), arg("bias_present") = true,
      "(dx, dweight, dbias or None) of dense_forward for the upstream gradient dy (..., O).");
  h.def(
      "embedding_forward",
      [](py::handle ids, py::handle weight) {
        return is_f32(weight, "weight") ? h_embedding_forward<float>(ids, weight)
                                        : h_embedding_forward<double>(ids, weight);
      },
      arg("ids"), arg("weight"), "y[...] = weight[ids[...]]; ids (...) in [0, V), weight (V, E).");
  h.def(
      "embedding_backward",
      [](py::handle dy, py::handle ids, py::handle V) {
        return is_f32(dy, "dy") ? h_embedding_backward<float>(dy, ids, V)
                                : h_embedding_backward<double>(dy, ids, V);
      },
      arg("dy"), arg("ids"), arg("V"),
      "dweight (V, E): the rows of dy (..., E) added up by id, in order.");
  h.def(
      "softmax_cross_entropy",
      [](py::handle logits, py::handle targets, py::handle mask) {
        return is_f32(logits, "logits") ? h_softmax_cross_entropy<float>(logits, targets, mask)
                                        : h_softmax_cross_entropy<double>(logits, targets, mask);
      },
      arg("logits"), arg("targets"), arg("mask").none(true) = py::none(),
      "(loss, probs): the cross-entropy summed over kept rows and the softmax of logits (..., V).");
  h.def(
      "softmax_cross_entropy_backward",
      [](py::handle probs, py::handle targets, py::handle mask) {
        return is_f32(probs, "probs")
                   ? h_softmax_cross_entropy_backward<float>(probs, targets, mask)
                   : h_softmax_cross_entropy_backward<double>(probs, targets, mask);
      },
      arg("probs"), arg("targets"), arg("mask").none(true) = py::none(),
      "dlogits = (probs - onehot(targets)) * mask, (..., V).");
  h.def(
      "last_step_forward",
      [](py::handle y, py::handle lengths) {
        return is_f32(y, "y") ? h_last_step_forward<float>(y, lengths)
                              : h_last_step_forward<double>(y, lengths);
      },
      arg("y"), arg("lengths").none(true) = py::none(),
      "out[b] = y[lengths[b] - 1, b] (T - 1 without lengths); y (T, B, F) -> out (B, F).");
  h.def(
      "last_step_backward",
      [](py::handle dout, py::handle lengths, py::handle T) {
        return is_f32(dout, "dout") ? h_last_step_backward<float>(dout, lengths, T)
                                    : h_last_step_backward<double>(dout, lengths, T);
      },
      arg("dout"), arg("lengths").none(true), arg("T"),
      "dy (T, B, F): dout[b] at step lengths[b] - 1 of example b, 0 elsewhere.");
  h.def(
      "dense_softmax_cross_entropy",
      [](py::handle x, py::handle weight, py::handle bias, py::handle targets, py::handle mask) {
        return is_f32(x, "x")
                   ? h_dense_softmax_cross_entropy<float>(x, weight, bias, targets, mask)
                   : h_dense_softmax_cross_entropy<double>(x, weight, bias, targets, mask);
      },
      arg("x"), arg("weight"), arg("bias").none(true), arg("targets"),
      arg("mask").none(true) = py::none(),
      "(loss, dx, dweight, dbias or None): dense_forward, softmax_cross_entropy and both "
      "backwards in one call.");
}

}  // namespace rnnx::bind
