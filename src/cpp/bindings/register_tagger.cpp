// Bindings for the tagging model's step (rnnx/tagger.hpp), float32 and float64, as the
// submodule `models`. rnnx.Tagger calls it first and words a refusal itself; these
// checks are complete on their own (types, dtypes, shapes, finiteness here; ids, targets
// and lengths in range in the core), so a bad call can never read out of bounds.
#include <cstdint>
#include <string>

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

// tagger_step(x, w_ih, w_hh, b_ih, b_hh, peephole, head_w, head_b, targets, lengths, cell,
//             nonlinearity, reset_after, simplified, grads)
//   -> loss (float), or (loss, dw_ih, dw_hh, db_ih, db_hh, dpeephole, dhead_w, dhead_b),
//      the absent ones None. No dx: the model's input is data (its gradient would cost a
//      product as large as the input projection, for nothing).
template <typename S>
py::object m_tagger_step(py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih,
                         py::handle b_hh, py::handle peephole, py::handle head_w,
                         py::handle head_b, py::handle targets, py::handle lengths,
                         const CellSpec& cell, bool with_grads) {
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
  auto opt = [](bool present, const Shape& shape, S** ptr) -> py::object {
    if (!present) return py::none();
    auto a = empty<S>(shape);
    *ptr = a.mutable_data();
    return std::move(a);
  };
  TaggerGrads<S> g;
  py::object dwih = opt(true, {G * d.H, d.D}, &g.dw_ih);
  py::object dwhh = opt(true, {G * d.H, d.H}, &g.dw_hh);
  py::object dbih = opt(bih.ptr != nullptr, {G * d.H}, &g.db_ih);
  py::object dbhh = opt(bih.ptr != nullptr, {G * d.H}, &g.db_hh);
  py::object dpp = opt(pp.ptr != nullptr, {3 * d.H}, &g.dpeephole);
  py::object dhw = opt(true, {C, d.H}, &g.dhead_w);
  py::object dhb = opt(hbp.ptr != nullptr, {C}, &g.dhead_b);
  S loss;
  {
    const ReleaseGilFor release(3 * madds);
    loss = tagger_step<S>(cell, d, C, xp.ptr, p, tg.data(), lp, &g);
  }
  return py::make_tuple(double(loss), dwih, dwhh, dbih, dbhh, dpp, dhw, dhb);
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

}  // namespace

void register_tagger(py::module_& m) {
  auto models = m.def_submodule("models", "Whole-model steps (forward, loss, backward in one call).");
  models.def(
      "tagger_step",
      [](py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih, py::handle b_hh,
         py::handle peephole, py::handle head_w, py::handle head_b, py::handle targets,
         py::handle lengths, const std::string& cell, const std::string& nonlinearity,
         bool reset_after, bool simplified, bool grads) {
        const CellSpec c = cell_spec(cell, nonlinearity, reset_after, simplified);
        return is_f32(w_ih) ? m_tagger_step<float>(x, w_ih, w_hh, b_ih, b_hh, peephole, head_w,
                                                   head_b, targets, lengths, c, grads)
                            : m_tagger_step<double>(x, w_ih, w_hh, b_ih, b_hh, peephole, head_w,
                                                    head_b, targets, lengths, c, grads);
      },
      py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih").none(true),
      py::arg("b_hh").none(true), py::arg("peephole").none(true), py::arg("head_w"),
      py::arg("head_b").none(true), py::arg("targets"), py::arg("lengths").none(true),
      py::arg("cell"), py::arg("nonlinearity") = "tanh", py::arg("reset_after") = true,
      py::arg("simplified") = false, py::arg("grads") = true,
      "The tagging model's loss (grads=False) or its loss and every gradient (rnnx/tagger.hpp).");
}

}  // namespace rnnx::bind
