// Bindings for the "Dinosaurus Island" drop-in (rnnx.dinos): a character-level RNN with
// batch 1, one-hot inputs given as indices, parameters Wax (n_a, V), Waa (n_a, n_a),
// Wya (V, n_a), b (n_a, 1), by (V, 1), float64.
#include <pybind11/stl.h>

#include <algorithm>

#include "bindings/arrays.hpp"
#include "rnnx/course.hpp"

namespace rnnx::bind {
namespace {

using S = double;
using ssize = py::ssize_t;

// An int sequence (list, tuple or 1-D integer array); None becomes -1 where allowed.
std::vector<std::int64_t> indices(py::handle obj, const char* name, bool allow_none) {
  if (py::isinstance<py::str>(obj) || !py::isinstance<py::sequence>(obj))
    throw py::type_error(std::string(name) + " must be a list of int indices");
  py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  std::vector<std::int64_t> out;
  out.reserve(seq.size());
  size_t t = 0;
  for (py::handle v : seq) {
    if (v.is_none()) {
      if (!allow_none)
        throw py::value_error(std::string(name) + "[" + std::to_string(t) + "] is None");
      out.push_back(-1);
    } else {
      PyObject* ix = PyNumber_Index(v.ptr());
      if (!ix) {
        PyErr_Clear();
        throw py::type_error(std::string(name) + "[" + std::to_string(t) +
                             "] must be an int index or None, got " +
                             std::string(py::str(py::type::handle_of(v).attr("__name__"))));
      }
      const long long value = PyLong_AsLongLong(ix);
      Py_DECREF(ix);
      if (value == -1 && PyErr_Occurred()) {  // beyond 64 bits: out of any vocabulary
        PyErr_Clear();
        throw py::value_error(std::string(name) + "[" + std::to_string(t) + "] = " +
                              std::string(py::str(v)) +
                              " is out of range (too large for an index)");
      }
      if (value < 0)
        throw py::value_error(std::string(name) + "[" + std::to_string(t) + "] = " +
                              std::to_string(value) + " is negative");
      out.push_back(value);
    }
    ++t;
  }
  return out;
}

py::array param(const py::dict& p, const char* key) { return dict_array<S>(p, key, "parameters"); }

struct Params {
  CharRnnParams<S> view;
  py::array wax, waa, wya, b, by;  // the user's arrays (updated in place by optimize)
  Aligned<S> keep[5];              // aligned contiguous views or copies of them
};

const S* contiguous_ptr(Aligned<S>& slot, const py::array& a, const Name& name) {
  slot = aligned<S>(a);
  require_finite(slot.ptr, Index(a.size()), name);
  return slot.ptr;
}

// n_a from Waa, the vocabulary V from by (as the course's sample() does).
Params read_params(py::handle obj) {
  if (!py::isinstance<py::dict>(obj))
    throw py::type_error("parameters must be a dict, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  py::dict p = py::reinterpret_borrow<py::dict>(obj);
  Params P;
  P.wax = param(p, "Wax");
  P.waa = param(p, "Waa");
  P.wya = param(p, "Wya");
  P.b = param(p, "b");
  P.by = param(p, "by");
  require_ndim(P.waa, "parameters['Waa']", 2, "(n_a, n_a)");
  require_ndim(P.by, "parameters['by']", 2, "(n_y, 1)");
  const ssize H = P.waa.shape(1), V = P.by.shape(0);
  require_shape(P.waa, "parameters['Waa']", {H, H}, "(n_a, n_a)");
  require_shape(P.wax, "parameters['Wax']", {H, V}, "(n_a, n_x)");
  require_shape(P.wya, "parameters['Wya']", {V, H}, "(n_y, n_a)");
  require_shape(P.b, "parameters['b']", {H, 1}, "(n_a, 1)");
  require_shape(P.by, "parameters['by']", {V, 1}, "(n_y, 1)");
  P.view = CharRnnParams<S>{H,
                            V,
                            contiguous_ptr(P.keep[0], P.wax, "parameters['Wax']"),
                            contiguous_ptr(P.keep[1], P.waa, "parameters['Waa']"),
                            contiguous_ptr(P.keep[2], P.wya, "parameters['Wya']"),
                            contiguous_ptr(P.keep[3], P.b, "parameters['b']"),
                            contiguous_ptr(P.keep[4], P.by, "parameters['by']")};
  return P;
}

void check_sequences(const std::vector<std::int64_t>& X, const std::vector<std::int64_t>& Y) {
  if (X.empty()) throw py::value_error("X must not be empty");
  if (X.size() != Y.size())
    throw py::value_error("X and Y must have the same length, got " + std::to_string(X.size()) +
                          " and " + std::to_string(Y.size()));
}

void check_vocab(const Params& P, ssize vocab_size) {
  if (vocab_size != P.view.V)
    throw py::value_error("vocab_size = " + std::to_string(vocab_size) +
                          " does not match parameters['Wax'] of shape " + shape_str(P.wax) +
                          " (n_a, vocab_size)");
}

// rnn_forward(X, Y, a0, parameters, vocab_size) -> (loss, a_all (T+1, n_a), y_hat (T, V))
py::tuple forward(py::handle X_obj, py::handle Y_obj, py::handle a0_obj, py::handle params,
                  ssize vocab_size) {
  auto X = indices(X_obj, "X", true), Y = indices(Y_obj, "Y", false);
  check_sequences(X, Y);
  Params P = read_params(params);
  check_vocab(P, vocab_size);
  const ssize T = ssize(X.size()), H = P.view.H, V = P.view.V;
  py::array a0 = as_array<S>(a0_obj, "a0");
  require_shape(a0, "a0", {H, 1}, "(n_a, 1)");
  auto a_all = empty<S>({T + 1, H});
  auto y_hat = empty<S>({T, V});
  copy_2d<S>(a0, a_all.mutable_data(), "a0", true);
  S loss;
  S *ap = a_all.mutable_data(), *yp = y_hat.mutable_data();
  {
    py::gil_scoped_release release;
    loss = char_rnn_forward<S>(P.view, T, X.data(), Y.data(), ap, yp);
  }
  return py::make_tuple(loss, a_all, y_hat);
}

struct Grads {
  py::array_t<S> dwax, dwaa, dwya, db, dby, da_next;
};

Grads run_backward(const Params& P, const std::vector<std::int64_t>& X,
                   const std::vector<std::int64_t>& Y, const S* a, const S* a_prev,
                   const S* y_hat) {
  const ssize T = ssize(X.size()), H = P.view.H, V = P.view.V;
  Grads g{empty<S>({H, V}), empty<S>({H, H}), empty<S>({V, H}), empty<S>({H, ssize(1)}),
          empty<S>({V, ssize(1)}), empty<S>({H, ssize(1)})};
  S *dwax = g.dwax.mutable_data(), *dwaa = g.dwaa.mutable_data(), *dwya = g.dwya.mutable_data(),
    *db = g.db.mutable_data(), *dby = g.dby.mutable_data(), *dan = g.da_next.mutable_data();
  {
    py::gil_scoped_release release;
    AlignedVec<S> dz(size_t(T * H));
    char_rnn_backward<S>(P.view, T, X.data(), Y.data(), a, a_prev, y_hat, dz.data(), dwax, dwaa,
                         dwya, db, dby, dan);
  }
  return g;
}

// rnn_backward(X, Y, parameters, a, a_prev, y_hat) with a, a_prev (T, n_a), y_hat (T, V)
// time-major stacks -> gradients {dWax, dWaa, dWya, db, dby, da_next}
py::dict backward(py::handle X_obj, py::handle Y_obj, py::handle params, py::handle a_obj,
                  py::handle a_prev_obj, py::handle y_obj) {
  auto X = indices(X_obj, "X", true), Y = indices(Y_obj, "Y", false);
  check_sequences(X, Y);
  Params P = read_params(params);
  const ssize T = ssize(X.size()), H = P.view.H, V = P.view.V;
  for (Index t = 0; t < T; ++t)
    if (X[size_t(t)] >= V || Y[size_t(t)] >= V)
      throw py::value_error("X or Y holds an index out of range for the vocabulary of " +
                            std::to_string(V));
  auto stacked = [&](py::handle obj, const char* name, ssize n) {
    py::array arr = as_array<S>(obj, name);
    require_shape(arr, name, {T, n}, "(T, n)");
    Aligned<S> out = aligned<S>(arr);
    require_finite(out.ptr, T * n, name);
    return out;
  };
  const Aligned<S> a = stacked(a_obj, "cache a", H), a_prev = stacked(a_prev_obj, "cache a_prev", H),
                   y_hat = stacked(y_obj, "cache y_hat", V);
  Grads g = run_backward(P, X, Y, a.ptr, a_prev.ptr, y_hat.ptr);
  py::dict out;
  dict_set(out, "dWax", g.dwax);
  dict_set(out, "dWaa", g.dwaa);
  dict_set(out, "dWya", g.dwya);
  dict_set(out, "db", g.db);
  dict_set(out, "dby", g.dby);
  dict_set(out, "da_next", g.da_next);
  return out;
}

// Clip to [-m, m] element-wise as np.clip does (NaN stays NaN).
void clip_values(S* p, ssize n, S m) {
  for (ssize i = 0; i < n; ++i) p[i] = p[i] < -m ? -m : (p[i] > m ? m : p[i]);
}

// p += -lr * g, in place on the user's array (any strides).
void update_inplace(py::array& p, const S* g, S lr) {
  // Byte strides and memcpy: the user's array may be misaligned or strided by a number of
  // bytes that is not a multiple of 8 (a plain double* would misread it).
  const ssize r = p.shape(0), c = p.shape(1), b0 = p.strides(0), b1 = p.strides(1);
  char* base = static_cast<char*>(p.mutable_data());
  const S neg = -lr;
  for (ssize i = 0; i < r; ++i)
    for (ssize j = 0; j < c; ++j) {
      char* at = base + i * b0 + j * b1;
      S v;
      std::memcpy(&v, at, sizeof v);
      const S step = neg * g[i * c + j];
      v = v + step;
      std::memcpy(at, &v, sizeof v);
    }
}

// optimize(X, Y, a_prev, parameters, learning_rate, max_value): forward, backward, clip,
// in-place update. Returns (loss, {dWaa, dWax, dWya, db, dby} clipped, a_last (n_a, 1)).
py::tuple optimize(py::handle X_obj, py::handle Y_obj, py::handle a_prev_obj, py::handle params,
                   S learning_rate, S max_value) {
  auto X = indices(X_obj, "X", true), Y = indices(Y_obj, "Y", false);
  check_sequences(X, Y);
  Params P = read_params(params);
  if (!std::isfinite(learning_rate)) throw py::value_error("learning_rate must be finite");
  // Every array must be updatable before any is touched: all five change, or none.
  const char* names[5] = {"Wax", "Waa", "Wya", "b", "by"};
  py::array* arrays[5] = {&P.wax, &P.waa, &P.wya, &P.b, &P.by};
  for (int k = 0; k < 5; ++k) {
    if (!arrays[k]->writeable())
      throw py::value_error(std::string("parameters['") + names[k] +
                            "'] is read-only; optimize updates the parameters in place");
    for (int ax = 0; ax < 2; ++ax)
      if (arrays[k]->strides(ax) % ssize(sizeof(S)))
        throw py::value_error(std::string("parameters['") + names[k] +
                              "'] has strides that are not a multiple of its item size");
  }
  const ssize T = ssize(X.size()), H = P.view.H, V = P.view.V;
  py::array a0 = as_array<S>(a_prev_obj, "a_prev");
  require_shape(a0, "a_prev", {H, 1}, "(n_a, 1)");
  AlignedVec<S> a_all(size_t((T + 1) * H)), y_hat(size_t(T * V));
  copy_2d<S>(a0, a_all.data(), "a_prev", true);
  S loss;
  {
    py::gil_scoped_release release;
    loss = char_rnn_forward<S>(P.view, T, X.data(), Y.data(), a_all.data(), y_hat.data());
  }
  Grads g = run_backward(P, X, Y, a_all.data() + H, a_all.data(), y_hat.data());
  py::array_t<S>* clipped[5] = {&g.dwaa, &g.dwax, &g.dwya, &g.db, &g.dby};
  for (auto* a : clipped) clip_values(a->mutable_data(), a->size(), max_value);
  update_inplace(P.wax, g.dwax.data(), learning_rate);
  update_inplace(P.waa, g.dwaa.data(), learning_rate);
  update_inplace(P.wya, g.dwya.data(), learning_rate);
  update_inplace(P.b, g.db.data(), learning_rate);
  update_inplace(P.by, g.dby.data(), learning_rate);
  py::dict grads;
  dict_set(grads, "dWaa", g.dwaa);
  dict_set(grads, "dWax", g.dwax);
  dict_set(grads, "dWya", g.dwya);
  dict_set(grads, "db", g.db);
  dict_set(grads, "dby", g.dby);
  py::array_t<S> a_last({H, ssize(1)});
  std::copy_n(a_all.data() + T * H, H, a_last.mutable_data());
  return py::make_tuple(loss, grads, a_last);
}

// sample(parameters, eos, seed) -> (indices, mt19937 key (624,) uint32, pos)
py::tuple sample(py::handle params, std::int64_t eos, std::int64_t seed) {
  Params P = read_params(params);
  if (eos < 0 || eos >= P.view.V)
    throw py::value_error("char_to_ix['\\n'] = " + std::to_string(eos) +
                          " is out of range for the vocabulary of " + std::to_string(P.view.V));
  if (seed < 0 || seed > 0xffffffffLL - 100)
    throw py::value_error("seed must be between 0 and 2**32 - 101, got " + std::to_string(seed));
  LegacyMT19937 rng;
  std::vector<std::int64_t> out;
  {
    py::gil_scoped_release release;
    out = char_rnn_sample<S>(P.view, eos, seed, rng);
  }
  py::array_t<std::uint32_t> key(ssize(LegacyMT19937::N));
  std::copy(rng.key.begin(), rng.key.end(), key.mutable_data());
  py::array_t<std::int64_t> ix(ssize(out.size()));
  std::copy(out.begin(), out.end(), ix.mutable_data());
  return py::make_tuple(ix, key, rng.pos);
}

}  // namespace

void register_dinos(py::module_& m) {
  auto d = m.def_submodule("dinos", "Kernels behind rnnx.dinos (float64, batch 1).");
  d.def("rnn_forward", &forward);
  d.def("rnn_backward", &backward);
  d.def("optimize", &optimize);
  d.def("sample", &sample);
}

}  // namespace rnnx::bind
