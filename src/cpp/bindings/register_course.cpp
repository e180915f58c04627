// Bindings for the course drop-in ("Step by Step" and "Dinosaurus Island").
//
// The course works in float64 with the batch on the second axis: steps (n, m),
// sequences (n, m, T), biases (n, 1). Each function here checks its arguments (naming
// them in every message), copies the course layout once into the core's time-major
// buffers, runs the whole time loop in C++ with the GIL released, and returns the
// results as NumPy views of those buffers in the course's layout. The Python layer
// (rnnx/course.py, rnnx/dinos.py) builds the caches from the same buffers.
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>

#include "bindings/arrays.hpp"
#include "rnnx/course.hpp"
#include "rnnx/lstm.hpp"
#include "rnnx/rnn.hpp"

namespace rnnx::bind {
namespace {

using S = double;
using ssize = py::ssize_t;

// ---------------------------------------------------------------------------------------
// Arguments

py::dict as_dict(py::handle obj, const char* name) {
  if (!py::isinstance<py::dict>(obj))
    throw py::type_error(std::string(name) + " must be a dict, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  return py::reinterpret_borrow<py::dict>(obj);
}

py::array get_param(const py::dict& p, const char* key) {
  return dict_array<S>(p, key, "parameters");
}

// A parameter as an aligned C-contiguous block (see Aligned), checked finite.
using Contig = Aligned<S>;
Contig contiguous(const py::array& a, const Name& name) {
  Contig c = aligned<S>(a);
  require_finite(c.ptr, Index(a.size()), name);
  return c;
}

py::array sequence_arg(py::handle obj, const char* name, const char* dims) {
  py::array a = as_array<S>(obj, name);
  require_ndim(a, name, 3, dims);
  return a;
}

py::array step_arg(py::handle obj, const char* name, const char* dims) {
  py::array a = as_array<S>(obj, name);
  require_ndim(a, name, 2, dims);
  return a;
}

// Course layout views of time-major buffers.
// buf (m, n) at ptr  ->  (n, m) view; `stride` is the row stride of the buffer
py::array step_view(const py::array& base, const S* ptr, ssize m, ssize n, ssize stride) {
  return view<S>(base, ptr, {n, m}, {1, stride});
}
// A new time-major (T, m, n) buffer shown as the course's (n, m, T), or (n, m) for a step.
Strided<S> course_out(ssize T, ssize m, ssize n, bool step) {
  if (step) return empty_strided<S>({n, m}, {1, n}, m * n);
  return empty_strided<S>({n, m, T}, {1, n, m * n}, T * m * n);
}

py::array column(const AlignedVec<S>& v, ssize offset, ssize n) {
  py::array_t<S> out({n, ssize(1)});
  std::copy(v.begin() + offset, v.begin() + offset + n, out.mutable_data());
  return std::move(out);
}

// ---------------------------------------------------------------------------------------
// Basic RNN

struct RnnParams {
  ssize n_a, n_x, n_y;
  Contig wax, waa, ba, wya, by;
};

// Wax (n_a, n_x), Waa (n_a, n_a), ba (n_a, 1); with_head adds Wya (n_y, n_a), by (n_y, 1).
// n_a is read from Waa (and checked against Wya when present), n_x from the input.
RnnParams rnn_params(py::handle obj, ssize n_x, bool with_head) {
  py::dict p = as_dict(obj, "parameters");
  RnnParams r{};
  py::array waa = get_param(p, "Waa");
  require_ndim(waa, "parameters['Waa']", 2, "(n_a, n_a)");
  r.n_a = waa.shape(0);
  r.n_x = n_x;
  py::array wax = get_param(p, "Wax"), ba = get_param(p, "ba");
  require_shape(waa, "parameters['Waa']", {r.n_a, r.n_a}, "(n_a, n_a)");
  require_shape(wax, "parameters['Wax']", {r.n_a, n_x}, "(n_a, n_x)");
  require_shape(ba, "parameters['ba']", {r.n_a, 1}, "(n_a, 1)");
  r.wax = contiguous(wax, "parameters['Wax']");
  r.waa = contiguous(waa, "parameters['Waa']");
  r.ba = contiguous(ba, "parameters['ba']");
  if (with_head) {
    py::array wya = get_param(p, "Wya");
    require_ndim(wya, "parameters['Wya']", 2, "(n_y, n_a)");
    r.n_y = wya.shape(0);
    require_shape(wya, "parameters['Wya']", {r.n_y, r.n_a}, "(n_y, n_a)");
    py::array by = get_param(p, "by");
    require_shape(by, "parameters['by']", {r.n_y, 1}, "(n_y, 1)");
    r.wya = contiguous(wya, "parameters['Wya']");
    r.by = contiguous(by, "parameters['by']");
  }
  return r;
}

// Forward over a time-major input x_tm (T, m, n_x) from a_prev (n_a, m).
// Returns (h_all (T+1, m, n_a), y in the course's layout).
std::pair<py::array, py::array> rnn_run_forward(const RnnParams& p, const AlignedVec<S>& x_tm,
                                                ssize T, ssize m, const py::array& a_prev,
                                                const char* a_prev_name, bool step) {
  require_shape(a_prev, a_prev_name, {p.n_a, m}, "(n_a, m)");
  auto h_all = empty<S>({T + 1, m, p.n_a});
  Strided<S> y = course_out(T, m, p.n_y, step);
  transpose_2d<S>(a_prev, h_all.mutable_data(), a_prev_name, true);
  S* h = h_all.mutable_data();
  S* yp = y.data;
  {
    ReleaseGilFor release(double(T) * m * p.n_a * (p.n_a + p.n_x + p.n_y));
    const SeqDims d{T, m, p.n_x, p.n_a};
    rnn_forward<S>(d, Nonlinearity::Tanh, x_tm.data(), p.wax.ptr, p.waa.ptr, p.ba.ptr, h);
    dense_head<S>(T * m, p.n_a, p.n_y, h + m * p.n_a, p.wya.ptr, p.by.ptr, yp);
    softmax_steps<S>(T, m, p.n_y, yp);
  }
  return {h_all, y.array};
}

// rnn_forward(x, a0, parameters) -> (a, y_pred, h_all)
py::tuple course_rnn_forward(py::handle x_obj, py::handle a0_obj, py::handle params) {
  py::array x = sequence_arg(x_obj, "x", "(n_x, m, T_x)");
  const ssize n_x = x.shape(0), m = x.shape(1), T = x.shape(2);
  RnnParams p = rnn_params(params, n_x, true);
  py::array a0 = step_arg(a0_obj, "a0", "(n_a, m)");
  AlignedVec<S> x_tm(size_t(T * m * n_x));
  to_time_major<S>(x, x_tm.data(), T, "x", true);
  auto [h_all, y] = rnn_run_forward(p, x_tm, T, m, a0, "a0", false);
  const S* h = static_cast<const S*>(h_all.data());
  // `a` is the user's to change: a copy, as the course's is, not a view of h_all.
  return py::make_tuple(from_time_major<S>(h + m * p.n_a, T, m, p.n_a), y, h_all);
}

// rnn_cell_forward(xt, a_prev, parameters) -> (a_next, yt_pred)
py::tuple course_rnn_cell_forward(py::handle xt_obj, py::handle a_prev_obj, py::handle params) {
  py::array xt = step_arg(xt_obj, "xt", "(n_x, m)");
  const ssize n_x = xt.shape(0), m = xt.shape(1);
  RnnParams p = rnn_params(params, n_x, true);
  py::array a_prev = step_arg(a_prev_obj, "a_prev", "(n_a, m)");
  AlignedVec<S> x_tm(size_t(m * n_x));
  transpose_2d<S>(xt, x_tm.data(), "xt", true);
  auto [h_all, y] = rnn_run_forward(p, x_tm, 1, m, a_prev, "a_prev", true);
  const S* h = static_cast<const S*>(h_all.data());
  return py::make_tuple(step_view(h_all, h + m * p.n_a, m, p.n_a, p.n_a), y);
}

// Backward through time from time-major buffers; da_tm (T, m, n_a).
// Returns {dx (n_x, m, T), da0, dWax, dWaa, dba}, dx_key naming the first entry.
py::dict rnn_run_backward(const RnnParams& p, ssize T, ssize m, const S* x_tm, const S* h,
                          const S* h_prev, const S* da_tm, const char* dx_key,
                          const char* da0_key, bool step) {
  const ssize n_a = p.n_a, n_x = p.n_x;
  Strided<S> dx = course_out(T, m, n_x, step), da0 = course_out(1, m, n_a, true);
  py::array_t<S> dwax = empty<S>({n_a, n_x}), dwaa = empty<S>({n_a, n_a}), dba = empty<S>({n_a, ssize(1)});
  S *dxp = dx.data, *da0p = da0.data, *dwaxp = dwax.mutable_data(),
    *dwaap = dwaa.mutable_data(), *dbap = dba.mutable_data();
  {
    ReleaseGilFor release(2.0 * T * m * n_a * (n_a + n_x));
    AlignedVec<S> dz(size_t(T * m * n_a));
    rnn_backward<S>(SeqDims{T, m, n_x, n_a}, Nonlinearity::Tanh, x_tm, p.wax.ptr, p.waa.ptr, h,
                    h_prev, da_tm, nullptr, dz.data(), dxp, da0p, dwaxp, dwaap, dbap);
  }
  py::dict g;
  dict_set(g, dx_key, dx.array);
  dict_set(g, da0_key, da0.array);
  dict_set(g, "dWax", dwax);
  dict_set(g, "dWaa", dwaa);
  dict_set(g, "dba", dba);
  return g;
}

// The course's T comes from da: the caches must cover at least that many steps.
ssize steps_from_da(const py::array& da, ssize n_a, ssize m, ssize T_cached) {
  require_shape(da, "da", {n_a, m, da.shape(2)}, "(n_a, m, T_x)");
  const ssize T = da.shape(2);
  if (T > T_cached)
    throw py::index_error("da has T_x = " + std::to_string(T) + " steps but the caches hold only " +
                          std::to_string(T_cached));
  return T;
}

// The state buffer's step 0 from the cache's a0 (the user's array, which the course's
// backward reads as it is now).
// A buffer that rnnx's own forward made and course.py hands back (h_all, c_all, gates):
// it must still be the writable, C-contiguous, aligned float64 array of shape
// (rows, m, width); anything else is refused rather than read or written out of bounds.
void require_own(const py::array& a, const char* name, ssize rows, ssize m, ssize width) {
  as_array<S>(a, name);
  const bool ok = a.ndim() == 3 && a.shape(0) == rows && rows >= 1 && a.shape(1) == m &&
                  a.shape(2) == width && (a.flags() & py::array::c_style) && a.writeable() &&
                  reinterpret_cast<std::uintptr_t>(a.data()) % alignof(S) == 0;
  if (!ok)
    throw py::value_error(std::string(name) + " must be the writable C-contiguous buffer of shape " +
                          shape_str(Shape{rows, m, width}) + " that rnnx's forward made, got " +
                          "shape " + shape_str(a));
}

void refresh_initial_state(py::array& h_all, py::handle a0_obj, ssize n_a, ssize m) {
  py::array a0 = step_arg(a0_obj, "caches[0][0][1] (a0)", "(n_a, m)");
  require_shape(a0, "caches[0][0][1] (a0)", {n_a, m}, "(n_a, m)");
  transpose_2d<S>(a0, static_cast<S*>(h_all.mutable_data()), "caches[0][0][1] (a0)", true);
}

// rnn_backward(da, x, h_all, parameters, a0): caches made by rnnx's rnn_forward.
py::dict course_rnn_backward_own(py::handle da_obj, py::handle x_obj, py::array h_all,
                                 py::handle params, py::handle a0) {
  py::array da = sequence_arg(da_obj, "da", "(n_a, m, T_x)");
  py::array x = sequence_arg(x_obj, "caches[1]", "(n_x, m, T_x)");
  const ssize n_x = x.shape(0), m = x.shape(1);
  RnnParams p = rnn_params(params, n_x, false);
  require_own(h_all, "h_all", h_all.ndim() ? h_all.shape(0) : 0, m, p.n_a);
  refresh_initial_state(h_all, a0, p.n_a, m);
  const ssize T = steps_from_da(da, p.n_a, m, h_all.shape(0) - 1);
  require_shape(x, "caches[1]", {n_x, m, x.shape(2)}, "(n_x, m, T_x)");
  if (x.shape(2) < T) throw py::index_error("caches[1] (x) has fewer steps than da");
  AlignedVec<S> x_tm(size_t(T * m * n_x)), da_tm(size_t(T * m * p.n_a));
  to_time_major<S>(x, x_tm.data(), T, "caches[1]", true);
  to_time_major<S>(da, da_tm.data(), T, "da", true);
  const S* h = static_cast<const S*>(h_all.data());
  return rnn_run_backward(p, T, m, x_tm.data(), h + m * p.n_a, h, da_tm.data(), "dx", "da0",
                          false);
}

py::tuple cache_tuple(py::handle cache, size_t n, const Name& name) {
  if (!py::isinstance<py::tuple>(cache) && !py::isinstance<py::list>(cache))
    throw py::type_error(name + " must be a tuple of " + std::to_string(n) + " entries");
  py::tuple c = py::tuple(py::reinterpret_borrow<py::object>(cache));
  if (c.size() != n)
    throw py::value_error(name + " must have " + std::to_string(n) + " entries, got " +
                          std::to_string(c.size()));
  return c;
}

// Stack entry `k` (an (n, m) array) of caches[0..T-1] into a time-major (T, m, n) buffer.
void stack_entry(const py::list& caches, ssize T, size_t k, size_t len, ssize n, ssize m,
                 const char* entry, const char* dims, S* dst) {
  for (ssize t = 0; t < T; ++t) {
    const std::string cname = "caches[0][" + std::to_string(t) + "]";
    py::tuple c = cache_tuple(caches[size_t(t)], len, cname);
    const std::string name = cname + "[" + std::to_string(k) + "] (" + entry + ")";
    py::array a = as_array<S>(c[k], name);
    require_shape(a, name, {n, m}, dims);
    transpose_2d<S>(a, dst + t * m * n, name, true);
  }
}

py::list cache_list(py::handle obj, ssize T) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::type_error("caches[0] must be a list of per-step caches");
  py::list l = py::list(py::reinterpret_borrow<py::object>(obj));
  if (ssize(l.size()) < T)
    throw py::index_error("da has T_x = " + std::to_string(T) + " steps but caches[0] holds only " +
                          std::to_string(l.size()));
  if (l.size() == 0) throw py::value_error("caches[0] is empty");
  return l;
}

// rnn_backward(da, cell_caches): caches built by any code, (a_next, a_prev, xt, parameters)
// per step.
py::dict course_rnn_backward_cells(py::handle da_obj, py::handle caches_obj) {
  py::array da = sequence_arg(da_obj, "da", "(n_a, m, T_x)");
  const ssize n_a = da.shape(0), m = da.shape(1), T = da.shape(2);
  py::list caches = cache_list(caches_obj, T);
  py::tuple c0 = cache_tuple(caches[0], 4, "caches[0][0]");
  py::array xt0 = step_arg(c0[2], "caches[0][0][2] (xt)", "(n_x, m)");
  const ssize n_x = xt0.shape(0);
  RnnParams p = rnn_params(c0[3], n_x, false);
  if (p.n_a != n_a)
    throw py::value_error("da must have shape (n_a, m, T_x) with n_a = " + std::to_string(p.n_a) +
                          " from parameters['Waa'], got " + shape_str(da));
  AlignedVec<S> x_tm(size_t(T * m * n_x)), h(size_t(T * m * n_a)), h_prev(h.size()),
      da_tm(h.size());
  stack_entry(caches, T, 0, 4, n_a, m, "a_next", "(n_a, m)", h.data());
  stack_entry(caches, T, 1, 4, n_a, m, "a_prev", "(n_a, m)", h_prev.data());
  stack_entry(caches, T, 2, 4, n_x, m, "xt", "(n_x, m)", x_tm.data());
  to_time_major<S>(da, da_tm.data(), T, "da", true);
  return rnn_run_backward(p, T, m, x_tm.data(), h.data(), h_prev.data(), da_tm.data(), "dx",
                          "da0", false);
}

// rnn_cell_backward(da_next, cache) -> {dxt, da_prev, dWax, dWaa, dba}
py::dict course_rnn_cell_backward(py::handle da_obj, py::handle cache_obj) {
  py::tuple c = cache_tuple(cache_obj, 4, "cache");
  py::array a_next = step_arg(c[0], "cache[0] (a_next)", "(n_a, m)");
  py::array xt = step_arg(c[2], "cache[2] (xt)", "(n_x, m)");
  const ssize n_a = a_next.shape(0), m = a_next.shape(1), n_x = xt.shape(0);
  RnnParams p = rnn_params(c[3], n_x, false);
  require_shape(a_next, "cache[0] (a_next)", {p.n_a, m}, "(n_a, m)");
  py::array a_prev = step_arg(c[1], "cache[1] (a_prev)", "(n_a, m)");
  require_shape(a_prev, "cache[1] (a_prev)", {n_a, m}, "(n_a, m)");
  require_shape(xt, "cache[2] (xt)", {n_x, m}, "(n_x, m)");
  py::array da = step_arg(da_obj, "da_next", "(n_a, m)");
  require_shape(da, "da_next", {n_a, m}, "(n_a, m)");
  AlignedVec<S> x_tm(size_t(m * n_x)), h(size_t(m * n_a)), h_prev(h.size()), da_tm(h.size());
  transpose_2d<S>(a_next, h.data(), "cache[0] (a_next)", true);
  transpose_2d<S>(a_prev, h_prev.data(), "cache[1] (a_prev)", true);
  transpose_2d<S>(xt, x_tm.data(), "cache[2] (xt)", true);
  transpose_2d<S>(da, da_tm.data(), "da_next", true);
  return rnn_run_backward(p, 1, m, x_tm.data(), h.data(), h_prev.data(), da_tm.data(), "dxt",
                          "da_prev", true);
}

// ---------------------------------------------------------------------------------------
// LSTM. The course keeps one (n_a, n_a + n_x) matrix per gate acting on [a_prev; xt];
// the core wants w_ih (4H, D) and w_hh (4H, H) in gate order i, f, g, o. The course's
// gate names: i = "i" (update), f = "f" (forget), g = "c" (candidate), o = "o" (output).

constexpr const char* kGateW[4] = {"Wi", "Wf", "Wc", "Wo"};
constexpr const char* kGateB[4] = {"bi", "bf", "bc", "bo"};
constexpr const char* kGradW[4] = {"dWi", "dWf", "dWc", "dWo"};
constexpr const char* kGradB[4] = {"dbi", "dbf", "dbc", "dbo"};

struct LstmParams {
  ssize n_a, n_x, n_y;
  AlignedVec<S> w_ih, w_hh, b;  // packed (4H, D), (4H, H), (4H)
  Contig wy, by;
};

LstmParams lstm_params(py::handle obj, ssize n_x, bool with_head) {
  py::dict p = as_dict(obj, "parameters");
  LstmParams r{};
  py::array wf = get_param(p, "Wf");
  require_ndim(wf, "parameters['Wf']", 2, "(n_a, n_a + n_x)");
  const ssize H = wf.shape(0);
  r.n_a = H;
  r.n_x = n_x;
  r.w_ih.resize(size_t(4 * H * n_x));
  r.w_hh.resize(size_t(4 * H * H));
  r.b.resize(size_t(4 * H));
  AlignedVec<S> w(size_t(H * (H + n_x)));
  for (int k = 0; k < 4; ++k) {
    const Name wn("parameters", kGateW[k]), bn("parameters", kGateB[k]);
    py::array wk = get_param(p, kGateW[k]);
    require_shape(wk, wn, {H, H + n_x}, "(n_a, n_a + n_x)");
    copy_2d<S>(wk, w.data(), wn, true);
    for (ssize i = 0; i < H; ++i) {
      std::copy_n(&w[size_t(i * (H + n_x))], H, &r.w_hh[size_t((k * H + i) * H)]);
      std::copy_n(&w[size_t(i * (H + n_x) + H)], n_x, &r.w_ih[size_t((k * H + i) * n_x)]);
    }
    py::array bk = get_param(p, kGateB[k]);
    require_shape(bk, bn, {H, 1}, "(n_a, 1)");
    copy_2d<S>(bk, &r.b[size_t(k * H)], bn, true);
  }
  if (with_head) {
    py::array wy = get_param(p, "Wy");
    require_ndim(wy, "parameters['Wy']", 2, "(n_y, n_a)");
    r.n_y = wy.shape(0);
    require_shape(wy, "parameters['Wy']", {r.n_y, H}, "(n_y, n_a)");
    py::array by = get_param(p, "by");
    require_shape(by, "parameters['by']", {r.n_y, 1}, "(n_y, 1)");
    r.wy = contiguous(wy, "parameters['Wy']");
    r.by = contiguous(by, "parameters['by']");
  }
  return r;
}

struct LstmOut {
  py::array_t<S> h_all, c_all, gates;
  Strided<S> y;
};

LstmOut lstm_run_forward(const LstmParams& p, const AlignedVec<S>& x_tm, ssize T, ssize m,
                         const py::array& a_prev, const char* a_name, const py::array* c_prev,
                         const char* c_name, bool step) {
  const ssize H = p.n_a;
  require_shape(a_prev, a_name, {H, m}, "(n_a, m)");
  LstmOut o{empty<S>({T + 1, m, H}), empty<S>({T + 1, m, H}), empty<S>({T, m, 4 * H}),
            course_out(T, m, p.n_y, step)};
  transpose_2d<S>(a_prev, o.h_all.mutable_data(), a_name, true);
  if (c_prev) {
    require_shape(*c_prev, c_name, {H, m}, "(n_a, m)");
    transpose_2d<S>(*c_prev, o.c_all.mutable_data(), c_name, true);
  } else {
    std::fill_n(o.c_all.mutable_data(), m * H, S(0));
  }
  S *h = o.h_all.mutable_data(), *c = o.c_all.mutable_data(), *g = o.gates.mutable_data(),
    *y = o.y.data;
  {
    ReleaseGilFor release(4.0 * T * m * H * (H + p.n_x) + double(T) * m * H * p.n_y);
    lstm_forward<S>(SeqDims{T, m, p.n_x, H}, x_tm.data(), p.w_ih.data(), p.w_hh.data(),
                    p.b.data(), g, h, c);
    dense_head<S>(T * m, H, p.n_y, h + m * H, p.wy.ptr, p.by.ptr, y);
    softmax_steps<S>(T, m, p.n_y, y);
  }
  return o;
}

// lstm_forward(x, a0, parameters) -> (a, y, c, h_all, c_all, gates)
py::tuple course_lstm_forward(py::handle x_obj, py::handle a0_obj, py::handle params) {
  py::array x = sequence_arg(x_obj, "x", "(n_x, m, T_x)");
  const ssize n_x = x.shape(0), m = x.shape(1), T = x.shape(2);
  LstmParams p = lstm_params(params, n_x, true);
  py::array a0 = step_arg(a0_obj, "a0", "(n_a, m)");
  AlignedVec<S> x_tm(size_t(T * m * n_x));
  to_time_major<S>(x, x_tm.data(), T, "x", true);
  LstmOut o = lstm_run_forward(p, x_tm, T, m, a0, "a0", nullptr, nullptr, false);
  const ssize H = p.n_a;
  return py::make_tuple(from_time_major<S>(o.h_all.data() + m * H, T, m, H),
                        o.y.array,
                        from_time_major<S>(o.c_all.data() + m * H, T, m, H), o.h_all, o.c_all,
                        o.gates);
}

// lstm_cell_forward(xt, a_prev, c_prev, parameters) -> (a_next, c_next, yt, ft, it, cct, ot)
py::tuple course_lstm_cell_forward(py::handle xt_obj, py::handle a_obj, py::handle c_obj,
                                   py::handle params) {
  py::array xt = step_arg(xt_obj, "xt", "(n_x, m)");
  const ssize n_x = xt.shape(0), m = xt.shape(1);
  LstmParams p = lstm_params(params, n_x, true);
  py::array a_prev = step_arg(a_obj, "a_prev", "(n_a, m)");
  py::array c_prev = step_arg(c_obj, "c_prev", "(n_a, m)");
  AlignedVec<S> x_tm(size_t(m * n_x));
  transpose_2d<S>(xt, x_tm.data(), "xt", true);
  LstmOut o = lstm_run_forward(p, x_tm, 1, m, a_prev, "a_prev", &c_prev, "c_prev", true);
  const ssize H = p.n_a;
  const S* g = o.gates.data();
  return py::make_tuple(step_view(o.h_all, o.h_all.data() + m * H, m, H, H),
                        step_view(o.c_all, o.c_all.data() + m * H, m, H, H),
                        o.y.array,
                        step_view(o.gates, g + H, m, H, 4 * H),      // ft
                        step_view(o.gates, g, m, H, 4 * H),          // it
                        step_view(o.gates, g + 2 * H, m, H, 4 * H),  // cct
                        step_view(o.gates, g + 3 * H, m, H, 4 * H));  // ot
}

// Backward from time-major buffers. gates (T, m, 4H) activated i f g o.
py::dict lstm_run_backward(const LstmParams& p, ssize T, ssize m, const S* x_tm, const S* gates,
                           const S* h_prev, const S* c, const S* c_prev, const S* da_tm,
                           const S* dc_last, bool step) {
  const ssize H = p.n_a, n_x = p.n_x;
  Strided<S> dx = course_out(T, m, n_x, step), da0 = course_out(1, m, H, true),
             dc0 = course_out(1, m, H, true);
  AlignedVec<S> dw_ih(size_t(4 * H * n_x)), dw_hh(size_t(4 * H * H)), db(size_t(4 * H));
  S *dxp = dx.data, *da0p = da0.data, *dc0p = dc0.data;
  {
    ReleaseGilFor release(8.0 * T * m * H * (H + n_x));
    AlignedVec<S> dgates(size_t(T * m * lstm_dgates_stride<S>(H)));
    lstm_backward<S>(SeqDims{T, m, n_x, H}, x_tm, p.w_ih.data(), p.w_hh.data(), gates, h_prev, c,
                     c_prev, da_tm, nullptr, dc_last, dgates.data(), dxp, da0p, dc0p,
                     dw_ih.data(), dw_hh.data(), db.data());
  }
  py::dict g;
  dict_set(g, step ? "dxt" : "dx", dx.array);
  dict_set(g, step ? "da_prev" : "da0", da0.array);
  if (step) dict_set(g, "dc_prev", dc0.array);
  // Unpack per course gate: dW* = [dW_hh rows | dW_ih rows] (n_a, n_a + n_x), db* (n_a, 1).
  const int order[4] = {1, 0, 2, 3};  // the course lists f, i, c, o
  for (int k : order) {
    py::array_t<S> dw({H, H + n_x});
    S* out = dw.mutable_data();
    for (ssize i = 0; i < H; ++i) {
      std::copy_n(&dw_hh[size_t((k * H + i) * H)], H, out + i * (H + n_x));
      std::copy_n(&dw_ih[size_t((k * H + i) * n_x)], n_x, out + i * (H + n_x) + H);
    }
    dict_set(g, kGradW[k], dw);
    dict_set(g, kGradB[k], column(db, k * H, H));
  }
  return g;
}

// lstm_backward(da, x, h_all, c_all, gates, parameters, a0): caches made by rnnx.
py::dict course_lstm_backward_own(py::handle da_obj, py::handle x_obj, py::array h_all,
                                  const py::array& c_all, const py::array& gates,
                                  py::handle params, py::handle a0) {
  py::array da = sequence_arg(da_obj, "da", "(n_a, m, T_x)");
  py::array x = sequence_arg(x_obj, "caches[1]", "(n_x, m, T_x)");
  const ssize n_x = x.shape(0), m = x.shape(1);
  LstmParams p = lstm_params(params, n_x, false);
  const ssize H = p.n_a;
  const ssize rows = h_all.ndim() ? h_all.shape(0) : 0;
  require_own(h_all, "h_all", rows, m, H);
  require_own(c_all, "c_all", rows, m, H);
  require_own(gates, "gates", rows - 1, m, 4 * H);
  refresh_initial_state(h_all, a0, H, m);
  const ssize T = steps_from_da(da, H, m, h_all.shape(0) - 1);
  if (x.shape(2) < T) throw py::index_error("caches[1] (x) has fewer steps than da");
  AlignedVec<S> x_tm(size_t(T * m * n_x)), da_tm(size_t(T * m * H));
  to_time_major<S>(x, x_tm.data(), T, "caches[1]", true);
  to_time_major<S>(da, da_tm.data(), T, "da", true);
  const S* h = static_cast<const S*>(h_all.data());
  const S* c = static_cast<const S*>(c_all.data());
  return lstm_run_backward(p, T, m, x_tm.data(), static_cast<const S*>(gates.data()), h,
                           c + m * H, c, da_tm.data(), nullptr, false);
}

// Per-step LSTM cache: (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters).
struct LstmStacked {
  AlignedVec<S> x_tm, gates, h_prev, c, c_prev;
};
void stack_lstm(const py::list& caches, ssize T, ssize H, ssize n_x, ssize m, LstmStacked& s) {
  s.x_tm.resize(size_t(T * m * n_x));
  s.gates.resize(size_t(T * m * 4 * H));
  s.h_prev.resize(size_t(T * m * H));
  s.c.resize(s.h_prev.size());
  s.c_prev.resize(s.h_prev.size());
  stack_entry(caches, T, 1, 10, H, m, "c_next", "(n_a, m)", s.c.data());
  stack_entry(caches, T, 2, 10, H, m, "a_prev", "(n_a, m)", s.h_prev.data());
  stack_entry(caches, T, 3, 10, H, m, "c_prev", "(n_a, m)", s.c_prev.data());
  stack_entry(caches, T, 8, 10, n_x, m, "xt", "(n_x, m)", s.x_tm.data());
  // gates: cache entries 4..7 are ft, it, cct, ot; the core's order is i f g o.
  const size_t entry[4] = {5, 4, 6, 7};
  const char* names[4] = {"it", "ft", "cct", "ot"};
  AlignedVec<S> tmp(size_t(T * m * H));
  for (int k = 0; k < 4; ++k) {
    stack_entry(caches, T, entry[k], 10, H, m, names[k], "(n_a, m)", tmp.data());
    for (ssize r = 0; r < T * m; ++r)
      std::copy_n(&tmp[size_t(r * H)], H, &s.gates[size_t(r * 4 * H + k * H)]);
  }
}

py::dict course_lstm_backward_cells(py::handle da_obj, py::handle caches_obj) {
  py::array da = sequence_arg(da_obj, "da", "(n_a, m, T_x)");
  const ssize n_a = da.shape(0), m = da.shape(1), T = da.shape(2);
  py::list caches = cache_list(caches_obj, T);
  py::tuple c0 = cache_tuple(caches[0], 10, "caches[0][0]");
  py::array xt0 = step_arg(c0[8], "caches[0][0][8] (xt)", "(n_x, m)");
  const ssize n_x = xt0.shape(0);
  LstmParams p = lstm_params(c0[9], n_x, false);
  if (p.n_a != n_a)
    throw py::value_error("da must have shape (n_a, m, T_x) with n_a = " + std::to_string(p.n_a) +
                          " from parameters['Wf'], got " + shape_str(da));
  LstmStacked s;
  stack_lstm(caches, T, n_a, n_x, m, s);
  AlignedVec<S> da_tm(size_t(T * m * n_a));
  to_time_major<S>(da, da_tm.data(), T, "da", true);
  return lstm_run_backward(p, T, m, s.x_tm.data(), s.gates.data(), s.h_prev.data(), s.c.data(),
                           s.c_prev.data(), da_tm.data(), nullptr, false);
}

// lstm_cell_backward(da_next, dc_next, cache)
py::dict course_lstm_cell_backward(py::handle da_obj, py::handle dc_obj, py::handle cache_obj) {
  py::tuple c = cache_tuple(cache_obj, 10, "cache");
  py::array xt = step_arg(c[8], "cache[8] (xt)", "(n_x, m)");
  const ssize n_x = xt.shape(0), m = xt.shape(1);
  LstmParams p = lstm_params(c[9], n_x, false);
  const ssize H = p.n_a;
  py::list one;
  one.append(c);
  LstmStacked s;
  stack_lstm(one, 1, H, n_x, m, s);
  py::array da = step_arg(da_obj, "da_next", "(n_a, m)");
  require_shape(da, "da_next", {H, m}, "(n_a, m)");
  py::array dc = step_arg(dc_obj, "dc_next", "(n_a, m)");
  require_shape(dc, "dc_next", {H, m}, "(n_a, m)");
  AlignedVec<S> da_tm(size_t(m * H)), dc_tm(size_t(m * H));
  transpose_2d<S>(da, da_tm.data(), "da_next", true);
  transpose_2d<S>(dc, dc_tm.data(), "dc_next", true);
  return lstm_run_backward(p, 1, m, s.x_tm.data(), s.gates.data(), s.h_prev.data(), s.c.data(),
                           s.c_prev.data(), da_tm.data(), dc_tm.data(), true);
}

}  // namespace

void register_course(py::module_& m) {
  auto c = m.def_submodule("course", "Kernels behind rnnx.course (float64, course layout).");
  c.def("rnn_forward", &course_rnn_forward);
  c.def("rnn_cell_forward", &course_rnn_cell_forward);
  c.def("rnn_backward_own", &course_rnn_backward_own);
  c.def("rnn_backward_cells", &course_rnn_backward_cells);
  c.def("rnn_cell_backward", &course_rnn_cell_backward);
  c.def("lstm_forward", &course_lstm_forward);
  c.def("lstm_cell_forward", &course_lstm_cell_forward);
  c.def("lstm_backward_own", &course_lstm_backward_own);
  c.def("lstm_backward_cells", &course_lstm_backward_cells);
  c.def("lstm_cell_backward", &course_lstm_cell_backward);
}

}  // namespace rnnx::bind
