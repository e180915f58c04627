// Bindings for the tagging model's step (rnnx/tagger.hpp), float32 and float64, as the
// submodule `models`. rnnx.Tagger calls it first and words a refusal itself; these
// checks are complete on their own (types, dtypes, shapes, finiteness here; ids, targets
// and lengths in range in the core), so a bad call can never read out of bounds.
#include <cstdint>
#include <string>

#include "bindings/fast_call.hpp"
#include "bindings/sequence_args.hpp"
#include "rnnx/tagger.hpp"

namespace rnnx::bind {
namespace {

CellSpec cell_spec(const std::string& cell, const std::string& nonlinearity, bool reset_after,
                   bool simplified) {
  CellSpec c;
  if (cell == "rnn")
    c.kind = CellKind::Rnn;
  else if (cell == "gru")
    c.kind = CellKind::Gru;
  else if (cell == "lstm")
    c.kind = CellKind::Lstm;
  else
    throw py::value_error("cell must be 'rnn', 'gru' or 'lstm', got '" + cell + "'");
  if (c.kind == CellKind::Rnn) c.f = parse_nonlinearity(nonlinearity);
  c.gru = GruVariant{reset_after, simplified};
  return c;
}

// tagger_step(x, params, names, head_w, head_b, targets, lengths, cell, nonlinearity,
//             reset_after, simplified, grad_names)
//   params: the layer's parameters by name (a dict); names: the keys of w_ih, w_hh, b_ih,
//   b_hh and peephole in it (a 5-tuple; an absent key is an absent parameter).
//   -> loss (float) when grad_names is None, else (loss, grads): grads a dict keyed by
//      grad_names (a 7-tuple: dw_ih, dw_hh, db_ih, db_hh, dpeephole, dhead_w, dhead_b),
//      the absent gradients left out. No dx: the model's input is data (its gradient
//      would cost a product as large as the input projection, for nothing).
// The parameters are looked up and the dict built here, not in rnnx.Tagger: at W_tiny
// sizes that Python cost 1-2 µs of a 10-20 µs call.
template <typename S>
py::object m_tagger_step(py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih,
                         py::handle b_hh, py::handle peephole, py::handle head_w,
                         py::handle head_b, py::handle targets, py::handle lengths,
                         const CellSpec& cell, py::handle grad_names) {
  const bool with_grads = !grad_names.is_none();
  if (!is_index_input(x)) as_array<S>(x, "x");
  const ssize G = cell.gates();
  SeqDims d = seq_dims(x, w_ih, G);
  const std::vector<std::int64_t> ids = index_input(x, d);
  const std::vector<std::int64_t> len = lengths_arg(lengths, d.B, d.T);
  const auto tg = int_arg(targets, "targets", {d.T, d.B}, "(T, B)");  // range: the core
  if (b_ih.is_none() != b_hh.is_none())
    throw py::value_error("b_ih and b_hh must be given together (or neither)");
  if (!peephole.is_none() && cell.kind != CellKind::Lstm)
    throw py::value_error("peephole is an LSTM's parameter; this cell has none");
  const Aligned<S> xp = d.ids ? Aligned<S>{} : in<S>(x, "x", {d.T, d.B, d.D}, "(T, B, D)");
  const Aligned<S> wih = in<S>(w_ih, "w_ih", {G * d.H, d.D}, "(G*H, D)");
  const Aligned<S> whh = in<S>(w_hh, "w_hh", {G * d.H, d.H}, "(G*H, H)");
  const Aligned<S> bih = in_opt<S>(b_ih, "b_ih", {G * d.H}, "(G*H,)");
  const Aligned<S> bhh = in_opt<S>(b_hh, "b_hh", {G * d.H}, "(G*H,)");
  const Aligned<S> pp = in_opt<S>(peephole, "peephole", {3 * d.H}, "(3H,)");
  const py::array hw = as_array<S>(head_w, "head_w");
  require_ndim(hw, "head_w", 2, "(C, H)");
  const ssize C = hw.shape(0);
  const Aligned<S> hwp = in<S>(head_w, "head_w", {C, d.H}, "(C, H)");
  const Aligned<S> hbp = in_opt<S>(head_b, "head_b", {C}, "(C,)");
  const TaggerParams<S> p{wih.ptr, whh.ptr, bih.ptr, bhh.ptr, pp.ptr, hwp.ptr, hbp.ptr};
  const std::int64_t* lp = ptr_or_null(len);
  const double madds = double(d.T) * d.B * (G * d.H * (d.H + (d.ids ? 1 : d.D)) + C * d.H);
  if (!with_grads) {
    S loss;
    {
      const ReleaseGilFor release(madds);
      loss = tagger_step<S>(cell, d, C, xp.ptr, p, tg.data(), lp, nullptr);
    }
    return py::float_(double(loss));
  }
  // Every output allocated with the GIL held; absent ones are None.
  const OutShape shapes[7] = {{true, 2, {G * d.H, d.D}},
                              {true, 2, {G * d.H, d.H}},
                              {bih.ptr != nullptr, 1, {G * d.H}},
                              {bih.ptr != nullptr, 1, {G * d.H}},
                              {pp.ptr != nullptr, 1, {3 * d.H}},
                              {true, 2, {C, d.H}},
                              {hbp.ptr != nullptr, 1, {C}}};
  S* ptr[7];
  const std::array<py::object, 7> grads = empty_group<S>(shapes, ptr);
  const TaggerGrads<S> g{ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], ptr[6]};
  S loss;
  {
    const ReleaseGilFor release(3 * madds);
    loss = tagger_step<S>(cell, d, C, xp.ptr, p, tg.data(), lp, &g);
  }
  Py_ssize_t n_grads = 0;
  for (const py::object& a : grads) n_grads += !a.is_none();
  // Sized for its keys: a new dict holds 5, and growing it for the 6th took 440 of a W_tiny
  // training call's 52K instructions (callgrind). (_PyDict_NewPresized is private API,
  // still exported in 3.13; later versions take the plain dict.)
#if PY_VERSION_HEX < 0x030E0000
  auto out = py::reinterpret_steal<py::dict>(_PyDict_NewPresized(n_grads));
  if (!out) throw py::error_already_set();
#else
  py::dict out;
#endif
  for (size_t i = 0; i < 7; ++i)
    if (!grads[i].is_none() &&
        PyDict_SetItem(out.ptr(), PyTuple_GET_ITEM(grad_names.ptr(), Py_ssize_t(i)),
                       grads[i].ptr()) != 0)
      throw py::error_already_set();
  return py::make_tuple(double(loss), std::move(out));
}

// params[name] (a new reference), or None where params has no such key.
py::object param(py::handle params, py::handle name) {
  PyObject* v = PyDict_GetItemWithError(params.ptr(), name.ptr());
  if (!v && PyErr_Occurred()) throw py::error_already_set();
  return v ? py::reinterpret_borrow<py::object>(v) : py::none();
}

// A tuple of n values (TypeError naming `what` otherwise).
void require_tuple(py::handle t, Py_ssize_t n, const char* what) {
  if (!PyTuple_Check(t.ptr()) || PyTuple_GET_SIZE(t.ptr()) != n)
    throw py::type_error(std::string(what) + " must be a tuple of " + std::to_string(n) +
                         " names");
}

// The precision of a call: w_ih's dtype (x may be integer ids).
bool is_f32(py::handle w_ih) {
  if (!py::isinstance<py::array>(w_ih))
    throw py::type_error("w_ih must be a numpy.ndarray of dtype float32 or float64, got " +
                         std::string(py::str(py::type::handle_of(w_ih).attr("__name__"))));
  const py::dtype dt = py::reinterpret_borrow<py::array>(w_ih).dtype();
  if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8) || dt.byteorder() == '>')
    throw py::type_error("w_ih must have dtype float32 or float64, got " +
                         std::string(py::str(dt)));
  return dt.itemsize() == 4;
}

// tagger_step(x, params, names, head_w, head_b, targets, lengths, cell,
//             nonlinearity="tanh", reset_after=True, simplified=False, grad_names=None)
// as a plain CPython function (fast_call.hpp): at W_tiny's sizes pybind11's dispatcher was
// 6% of the call's instructions.
constexpr const char* kStepArgs[] = {
    "x", "params", "names", "head_w", "head_b", "targets", "lengths", "cell",  // required
    "nonlinearity", "reset_after", "simplified", "grad_names"};

PyObject* tagger_step_entry(PyObject*, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames) {
  PyObject* a[12];
  if (!parse_args("tagger_step", kStepArgs, 8, args, nargs, kwnames, a)) return nullptr;
  try {
    const py::handle x(a[0]), params(a[1]), names(a[2]), head_w(a[3]), head_b(a[4]),
        targets(a[5]), lengths(a[6]), grad_names(a[11] ? a[11] : Py_None);
    if (!PyDict_Check(params.ptr()))
      throw py::type_error("params must be a dict of the layer's parameters");
    require_tuple(names, 5, "names");
    if (!grad_names.is_none()) require_tuple(grad_names, 7, "grad_names");
    py::object p[5];
    for (Py_ssize_t i = 0; i < 5; ++i) p[i] = param(params, PyTuple_GET_ITEM(names.ptr(), i));
    const CellSpec c = cell_spec(str_arg(a[7], "cell"),
                                 a[8] ? str_arg(a[8], "nonlinearity") : std::string("tanh"),
                                 a[9] ? bool_arg(a[9], "reset_after") : true,
                                 a[10] ? bool_arg(a[10], "simplified") : false);
    py::object out = is_f32(p[0])
                         ? m_tagger_step<float>(x, p[0], p[1], p[2], p[3], p[4], head_w, head_b,
                                                targets, lengths, c, grad_names)
                         : m_tagger_step<double>(x, p[0], p[1], p[2], p[3], p[4], head_w, head_b,
                                                 targets, lengths, c, grad_names);
    return out.release().ptr();
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

}  // namespace

void register_tagger(py::module_& m) {
  auto models = m.def_submodule("models", "Whole-model steps (forward, loss, backward in one call).");
  static PyMethodDef step_def = {
      "tagger_step",
      reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&tagger_step_entry)),
      METH_FASTCALL | METH_KEYWORDS,
      "tagger_step(x, params, names, head_w, head_b, targets, lengths, cell, "
      "nonlinearity='tanh', reset_after=True, simplified=False, grad_names=None)\n--\n\n"
      "The tagging model's loss (grad_names None) or its loss and every gradient "
      "(rnnx/tagger.hpp)."};
  py::object name = models.attr("__name__");
  PyObject* f = PyCFunction_NewEx(&step_def, nullptr, name.ptr());
  if (!f) throw py::error_already_set();
  models.attr("tagger_step") = py::reinterpret_steal<py::object>(f);
}

}  // namespace rnnx::bind
