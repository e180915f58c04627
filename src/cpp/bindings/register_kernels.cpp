// Bindings for the generic time-major kernels (float32 and float64), the layer API's
// building blocks and the functions the tests hold against rnnx.reference.kernels.
// The Python layer validates first; these checks repeat the essentials so that a bad
// call can never read out of bounds.
#include <optional>

#include "bindings/sequence_args.hpp"
#include "rnnx/gru.hpp"
#include "rnnx/lstm.hpp"
#include "rnnx/rnn.hpp"

namespace rnnx::bind {
namespace {

// rnn_forward(x, h0, w_ih, w_hh, b, nonlinearity) -> h_all (T+1, B, H)
template <typename S>
py::array k_rnn_forward(py::handle x, py::handle h0, py::handle w_ih, py::handle w_hh,
                        py::handle b, const std::string& nl, py::handle lengths) {
  if (!is_index_input(x)) as_array<S>(x, "x");
  as_array<S>(w_ih, "w_ih");
  SeqDims d = seq_dims(x, w_ih, 1);
  const std::vector<std::int64_t> ids = index_input(x, d);
  const std::vector<std::int64_t> len = lengths_arg(lengths, d.B, d.T);
  const Nonlinearity f = parse_nonlinearity(nl);
  const Aligned<S> xp_in = (d.ids ? Aligned<S>{} : in<S>(x, "x", {d.T, d.B, d.D}, "(T, B, D)"));
  const S* xp = xp_in.ptr;
  const Aligned<S> h0p_in = in<S>(h0, "h0", {d.B, d.H}, "(B, H)");
  const S* h0p = h0p_in.ptr;
  const Aligned<S> wih_in = in<S>(w_ih, "w_ih", {d.H, d.D}, "(H, D)");
  const S* wih = wih_in.ptr;
  const Aligned<S> whh_in = in<S>(w_hh, "w_hh", {d.H, d.H}, "(H, H)");
  const S* whh = whh_in.ptr;
  const Aligned<S> bp_in = in_opt<S>(b, "b", {d.H}, "(H,)");
  const S* bp = bp_in.ptr;
  auto h_all = empty<S>({d.T + 1, d.B, d.H});
  S* hp = h_all.mutable_data();
  std::copy_n(h0p, d.B * d.H, hp);
  {
    py::gil_scoped_release release;
    rnn_forward<S>(d, f, xp, wih, whh, bp, hp, ptr_or_null(len));
  }
  return std::move(h_all);
}

// rnn_backward(x, w_ih, w_hh, h, h_prev, dh, dh_n, nonlinearity)
//   -> (dx, dh0, dw_ih, dw_hh, db)
template <typename S>
py::tuple k_rnn_backward(py::handle x, py::handle w_ih, py::handle w_hh, py::handle h,
                         py::handle h_prev, py::handle dh, py::handle dh_n, const std::string& nl,
                         py::handle lengths) {
  if (!is_index_input(x)) as_array<S>(x, "x");
  as_array<S>(w_ih, "w_ih");
  SeqDims d = seq_dims(x, w_ih, 1);
  const std::vector<std::int64_t> ids = index_input(x, d);
  const std::vector<std::int64_t> len = lengths_arg(lengths, d.B, d.T);
  const Nonlinearity f = parse_nonlinearity(nl);
  const Shape tbh{d.T, d.B, d.H};
  const Aligned<S> xp_in = (d.ids ? Aligned<S>{} : in<S>(x, "x", {d.T, d.B, d.D}, "(T, B, D)"));
  const S* xp = xp_in.ptr;
  const Aligned<S> wih_in = in<S>(w_ih, "w_ih", {d.H, d.D}, "(H, D)");
  const S* wih = wih_in.ptr;
  const Aligned<S> whh_in = in<S>(w_hh, "w_hh", {d.H, d.H}, "(H, H)");
  const S* whh = whh_in.ptr;
  const Aligned<S> hp_in = in<S>(h, "h", tbh, "(T, B, H)");
  const S* hp = hp_in.ptr;
  const Aligned<S> hpp_in = in<S>(h_prev, "h_prev", tbh, "(T, B, H)");
  const S* hpp = hpp_in.ptr;
  const Aligned<S> dhp_in = in_opt<S>(dh, "dh", tbh, "(T, B, H)");
  const S* dhp = dhp_in.ptr;
  const Aligned<S> dhn_in = in_opt<S>(dh_n, "dh_n", {d.B, d.H}, "(B, H)");
  const S* dhn = dhn_in.ptr;
  auto dx = empty<S>(d.ids ? Shape{1} : Shape{d.T, d.B, d.D});  // index input: no dx
  auto dh0 = empty<S>({d.B, d.H});
  auto dwih = empty<S>({d.H, d.D});
  auto dwhh = empty<S>({d.H, d.H});
  auto db = empty<S>({d.H});
  S* dxp = d.ids ? nullptr : dx.mutable_data();
  S *dh0p = dh0.mutable_data(), *dwihp = dwih.mutable_data(),
    *dwhhp = dwhh.mutable_data(), *dbp = db.mutable_data();
  {
    py::gil_scoped_release release;
    AlignedVec<S> dz(size_t(d.T * d.B * d.H));
    rnn_backward<S>(d, f, xp, wih, whh, hp, hpp, dhp, dhn, dz.data(), dxp, dh0p, dwihp, dwhhp,
                    dbp, ptr_or_null(len));
  }
  return py::make_tuple(d.ids ? py::object(py::none()) : py::object(dx), dh0, dwih, dwhh, db);
}

// lstm_forward(x, h0, c0, w_ih, w_hh, b) -> (gates (T,B,4H), h_all, c_all (T+1,B,H))
template <typename S>
py::tuple k_lstm_forward(py::handle x, py::handle h0, py::handle c0, py::handle w_ih,
                         py::handle w_hh, py::handle b, py::handle lengths, py::handle peephole) {
  if (!is_index_input(x)) as_array<S>(x, "x");
  as_array<S>(w_ih, "w_ih");
  SeqDims d = seq_dims(x, w_ih, 4);
  const std::vector<std::int64_t> ids = index_input(x, d);
  const std::vector<std::int64_t> len = lengths_arg(lengths, d.B, d.T);
  const Aligned<S> xp_in = (d.ids ? Aligned<S>{} : in<S>(x, "x", {d.T, d.B, d.D}, "(T, B, D)"));
  const S* xp = xp_in.ptr;
  const Aligned<S> h0p_in = in<S>(h0, "h0", {d.B, d.H}, "(B, H)");
  const S* h0p = h0p_in.ptr;
  const Aligned<S> c0p_in = in<S>(c0, "c0", {d.B, d.H}, "(B, H)");
  const S* c0p = c0p_in.ptr;
  const Aligned<S> wih_in = in<S>(w_ih, "w_ih", {4 * d.H, d.D}, "(4H, D)");
  const S* wih = wih_in.ptr;
  const Aligned<S> whh_in = in<S>(w_hh, "w_hh", {4 * d.H, d.H}, "(4H, H)");
  const S* whh = whh_in.ptr;
  const Aligned<S> bp_in = in_opt<S>(b, "b", {4 * d.H}, "(4H,)");
  const S* bp = bp_in.ptr;
  const Aligned<S> pp_in = in_opt<S>(peephole, "peephole", {3 * d.H}, "(3H,)");
  auto gates = empty<S>({d.T, d.B, 4 * d.H});
  auto h_all = empty<S>({d.T + 1, d.B, d.H});
  auto c_all = empty<S>({d.T + 1, d.B, d.H});
  S *gp = gates.mutable_data(), *hp = h_all.mutable_data(), *cp = c_all.mutable_data();
  std::copy_n(h0p, d.B * d.H, hp);
  std::copy_n(c0p, d.B * d.H, cp);
  {
    py::gil_scoped_release release;
    lstm_forward<S>(d, xp, wih, whh, bp, gp, hp, cp, ptr_or_null(len), pp_in.ptr);
  }
  return py::make_tuple(gates, h_all, c_all);
}

// lstm_backward(x, w_ih, w_hh, gates, h_prev, c, c_prev, dh, dh_n, dc_n)
//   -> (dx, dh0, dc0, dw_ih, dw_hh, db)
template <typename S>
py::tuple k_lstm_backward(py::handle x, py::handle w_ih, py::handle w_hh, py::handle gates,
                          py::handle h_prev, py::handle c, py::handle c_prev, py::handle dh,
                          py::handle dh_n, py::handle dc_n, py::handle lengths,
                          py::handle peephole) {
  if (!is_index_input(x)) as_array<S>(x, "x");
  as_array<S>(w_ih, "w_ih");
  SeqDims d = seq_dims(x, w_ih, 4);
  const std::vector<std::int64_t> ids = index_input(x, d);
  const std::vector<std::int64_t> len = lengths_arg(lengths, d.B, d.T);
  const Shape tbh{d.T, d.B, d.H}, bh{d.B, d.H};
  const Aligned<S> xp_in = (d.ids ? Aligned<S>{} : in<S>(x, "x", {d.T, d.B, d.D}, "(T, B, D)"));
  const S* xp = xp_in.ptr;
  const Aligned<S> wih_in = in<S>(w_ih, "w_ih", {4 * d.H, d.D}, "(4H, D)");
  const S* wih = wih_in.ptr;
  const Aligned<S> whh_in = in<S>(w_hh, "w_hh", {4 * d.H, d.H}, "(4H, H)");
  const S* whh = whh_in.ptr;
  const Aligned<S> gp_in = in<S>(gates, "gates", {d.T, d.B, 4 * d.H}, "(T, B, 4H)");
  const S* gp = gp_in.ptr;
  const Aligned<S> hpp_in = in<S>(h_prev, "h_prev", tbh, "(T, B, H)");
  const S* hpp = hpp_in.ptr;
  const Aligned<S> cp_in = in<S>(c, "c", tbh, "(T, B, H)");
  const S* cp = cp_in.ptr;
  const Aligned<S> cpp_in = in<S>(c_prev, "c_prev", tbh, "(T, B, H)");
  const S* cpp = cpp_in.ptr;
  const Aligned<S> dhp_in = in_opt<S>(dh, "dh", tbh, "(T, B, H)");
  const S* dhp = dhp_in.ptr;
  const Aligned<S> dhn_in = in_opt<S>(dh_n, "dh_n", bh, "(B, H)");
  const S* dhn = dhn_in.ptr;
  const Aligned<S> dcn_in = in_opt<S>(dc_n, "dc_n", bh, "(B, H)");
  const S* dcn = dcn_in.ptr;
  auto dx = empty<S>(d.ids ? Shape{1} : Shape{d.T, d.B, d.D});  // index input: no dx
  auto dh0 = empty<S>(bh);
  auto dc0 = empty<S>(bh);
  auto dwih = empty<S>({4 * d.H, d.D});
  auto dwhh = empty<S>({4 * d.H, d.H});
  auto db = empty<S>({4 * d.H});
  const Aligned<S> pp_in = in_opt<S>(peephole, "peephole", {3 * d.H}, "(3H,)");
  py::object dpeep = py::none();
  S* dpp = nullptr;
  if (pp_in.ptr) {
    auto a = empty<S>({3 * d.H});
    dpp = a.mutable_data();
    dpeep = a;
  }
  S* dxp = d.ids ? nullptr : dx.mutable_data();
  S *dh0p = dh0.mutable_data(), *dc0p = dc0.mutable_data(),
    *dwihp = dwih.mutable_data(), *dwhhp = dwhh.mutable_data(), *dbp = db.mutable_data();
  {
    py::gil_scoped_release release;
    AlignedVec<S> dg(size_t(d.T * d.B * lstm_dgates_stride<S>(d.H)));
    lstm_backward<S>(d, xp, wih, whh, gp, hpp, cp, cpp, dhp, dhn, dcn, dg.data(), dxp, dh0p, dc0p,
                     dwihp, dwhhp, dbp, ptr_or_null(len), pp_in.ptr, dpp);
  }
  if (pp_in.ptr) return py::make_tuple(d.ids ? py::object(py::none()) : py::object(dx), dh0, dc0, dwih, dwhh, db, dpeep);
  return py::make_tuple(d.ids ? py::object(py::none()) : py::object(dx), dh0, dc0, dwih, dwhh, db);
}

// gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, simplified)
//   -> (gates (T,B,G*H), aux (T,B,H) or None, h_all (T+1,B,H))
template <typename S>
py::tuple k_gru_forward(py::handle x, py::handle h0, py::handle w_ih, py::handle w_hh,
                        py::handle b_ih, py::handle b_hh, bool reset_after, bool simplified,
                        py::handle lengths) {
  if (!is_index_input(x)) as_array<S>(x, "x");
  as_array<S>(w_ih, "w_ih");
  const GruVariant v{reset_after, simplified};
  const ssize G = v.gates();
  SeqDims d = seq_dims(x, w_ih, G);
  const std::vector<std::int64_t> ids = index_input(x, d);
  const std::vector<std::int64_t> len = lengths_arg(lengths, d.B, d.T);
  const Aligned<S> xp = (d.ids ? Aligned<S>{} : in<S>(x, "x", {d.T, d.B, d.D}, "(T, B, D)"));
  const Aligned<S> h0p = in<S>(h0, "h0", {d.B, d.H}, "(B, H)");
  const Aligned<S> wih = in<S>(w_ih, "w_ih", {G * d.H, d.D}, "(G*H, D)");
  const Aligned<S> whh = in<S>(w_hh, "w_hh", {G * d.H, d.H}, "(G*H, H)");
  const Aligned<S> bih = in_opt<S>(b_ih, "b_ih", {G * d.H}, "(G*H,)");
  const Aligned<S> bhh = in_opt<S>(b_hh, "b_hh", {G * d.H}, "(G*H,)");
  auto gates = empty<S>({d.T, d.B, G * d.H});
  auto h_all = empty<S>({d.T + 1, d.B, d.H});
  py::object aux = py::none();
  S* auxp = nullptr;
  if (!simplified) {
    auto a = empty<S>({d.T, d.B, d.H});
    auxp = a.mutable_data();
    aux = a;
  }
  S *gp = gates.mutable_data(), *hp = h_all.mutable_data();
  std::copy_n(h0p.ptr, d.B * d.H, hp);
  {
    py::gil_scoped_release release;
    gru_forward<S>(d, v, xp.ptr, wih.ptr, whh.ptr, bih.ptr, bhh.ptr, gp, auxp, hp,
                   ptr_or_null(len));
  }
  return py::make_tuple(gates, aux, h_all);
}

// gru_backward(x, w_ih, w_hh, h_prev, gates, aux, dh, dh_n, reset_after, simplified)
//   -> (dx, dh0, dw_ih, dw_hh, db_ih, db_hh)
template <typename S>
py::tuple k_gru_backward(py::handle x, py::handle w_ih, py::handle w_hh, py::handle h_prev,
                         py::handle gates, py::handle aux, py::handle dh, py::handle dh_n,
                         bool reset_after, bool simplified, py::handle lengths) {
  if (!is_index_input(x)) as_array<S>(x, "x");
  as_array<S>(w_ih, "w_ih");
  const GruVariant v{reset_after, simplified};
  const ssize G = v.gates();
  SeqDims d = seq_dims(x, w_ih, G);
  const std::vector<std::int64_t> ids = index_input(x, d);
  const std::vector<std::int64_t> len = lengths_arg(lengths, d.B, d.T);
  const Shape tbh{d.T, d.B, d.H}, bh{d.B, d.H};
  const Aligned<S> xp = (d.ids ? Aligned<S>{} : in<S>(x, "x", {d.T, d.B, d.D}, "(T, B, D)"));
  const Aligned<S> wih = in<S>(w_ih, "w_ih", {G * d.H, d.D}, "(G*H, D)");
  const Aligned<S> whh = in<S>(w_hh, "w_hh", {G * d.H, d.H}, "(G*H, H)");
  const Aligned<S> hpp = in<S>(h_prev, "h_prev", tbh, "(T, B, H)");
  const Aligned<S> gp = in<S>(gates, "gates", {d.T, d.B, G * d.H}, "(T, B, G*H)");
  if (!simplified && aux.is_none())
    throw py::value_error("aux must be the array gru_forward returned, got None");
  const Aligned<S> auxp = simplified ? Aligned<S>{} : in<S>(aux, "aux", tbh, "(T, B, H)");
  const Aligned<S> dhp = in_opt<S>(dh, "dh", tbh, "(T, B, H)");
  const Aligned<S> dhn = in_opt<S>(dh_n, "dh_n", bh, "(B, H)");
  auto dx = empty<S>(d.ids ? Shape{1} : Shape{d.T, d.B, d.D});  // index input: no dx
  auto dh0 = empty<S>(bh);
  auto dwih = empty<S>({G * d.H, d.D});
  auto dwhh = empty<S>({G * d.H, d.H});
  auto dbih = empty<S>({G * d.H});
  auto dbhh = empty<S>({G * d.H});
  S* dxp = d.ids ? nullptr : dx.mutable_data();
  S *dh0p = dh0.mutable_data(), *dwihp = dwih.mutable_data(),
    *dwhhp = dwhh.mutable_data(), *dbihp = dbih.mutable_data(), *dbhhp = dbhh.mutable_data();
  {
    py::gil_scoped_release release;
    AlignedVec<S> dgx(size_t(d.T * d.B * G * d.H)), dgh(dgx.size());
    gru_backward<S>(d, v, xp.ptr, wih.ptr, whh.ptr, hpp.ptr, gp.ptr, auxp.ptr, dhp.ptr, dhn.ptr,
                    dgx.data(), dgh.data(), dxp, dh0p, dwihp, dwhhp, dbihp, dbhhp,
                    ptr_or_null(len));
  }
  return py::make_tuple(d.ids ? py::object(py::none()) : py::object(dx), dh0, dwih, dwhh, dbih, dbhh);
}

// Dispatch on x's dtype: float32 or float64; anything else is a TypeError.
bool is_f32(py::handle x) {
  if (!py::isinstance<py::array>(x))
    throw py::type_error("x must be a numpy.ndarray of dtype float32 or float64");
  py::dtype dt = py::reinterpret_borrow<py::array>(x).dtype();
  if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8))
    throw py::type_error("x must have dtype float32 or float64, got " + std::string(py::str(dt)));
  return dt.itemsize() == 4;
}

}  // namespace

void register_kernels(py::module_& m) {
  auto k = m.def_submodule("kernels", "Time-major (T, B, D) kernels, float32 and float64.");
  using py::arg;
  k.def(
      "rnn_forward",
      [](py::handle x, py::handle h0, py::handle w_ih, py::handle w_hh, py::handle b,
         const std::string& nl, py::handle lengths) {
        return is_f32(is_index_input(x) ? w_ih : x) ? k_rnn_forward<float>(x, h0, w_ih, w_hh, b, nl, lengths)
                         : k_rnn_forward<double>(x, h0, w_ih, w_hh, b, nl, lengths);
      },
      arg("x"), arg("h0"), arg("w_ih"), arg("w_hh"), arg("b").none(true),
      arg("nonlinearity") = "tanh", arg("lengths").none(true) = py::none());
  k.def(
      "rnn_backward",
      [](py::handle x, py::handle w_ih, py::handle w_hh, py::handle h, py::handle h_prev,
         py::handle dh, py::handle dh_n, const std::string& nl, py::handle lengths) {
        return is_f32(is_index_input(x) ? w_ih : x) ? k_rnn_backward<float>(x, w_ih, w_hh, h, h_prev, dh, dh_n, nl, lengths)
                         : k_rnn_backward<double>(x, w_ih, w_hh, h, h_prev, dh, dh_n, nl, lengths);
      },
      arg("x"), arg("w_ih"), arg("w_hh"), arg("h"), arg("h_prev"), arg("dh").none(true),
      arg("dh_n").none(true), arg("nonlinearity") = "tanh", arg("lengths").none(true) = py::none());
  k.def(
      "gru_forward",
      [](py::handle x, py::handle h0, py::handle w_ih, py::handle w_hh, py::handle b_ih,
         py::handle b_hh, bool reset_after, bool simplified, py::handle lengths) {
        return is_f32(is_index_input(x) ? w_ih : x) ? k_gru_forward<float>(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after,
                                                simplified, lengths)
                         : k_gru_forward<double>(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after,
                                                 simplified, lengths);
      },
      arg("x"), arg("h0"), arg("w_ih"), arg("w_hh"), arg("b_ih").none(true),
      arg("b_hh").none(true), arg("reset_after") = true, arg("simplified") = false,
      arg("lengths").none(true) = py::none());
  k.def(
      "gru_backward",
      [](py::handle x, py::handle w_ih, py::handle w_hh, py::handle h_prev, py::handle gates,
         py::handle aux, py::handle dh, py::handle dh_n, bool reset_after, bool simplified,
         py::handle lengths) {
        return is_f32(is_index_input(x) ? w_ih : x) ? k_gru_backward<float>(x, w_ih, w_hh, h_prev, gates, aux, dh, dh_n,
                                                 reset_after, simplified, lengths)
                         : k_gru_backward<double>(x, w_ih, w_hh, h_prev, gates, aux, dh, dh_n,
                                                  reset_after, simplified, lengths);
      },
      arg("x"), arg("w_ih"), arg("w_hh"), arg("h_prev"), arg("gates"), arg("aux").none(true),
      arg("dh").none(true), arg("dh_n").none(true), arg("reset_after") = true,
      arg("simplified") = false, arg("lengths").none(true) = py::none());
  k.def(
      "lstm_forward",
      [](py::handle x, py::handle h0, py::handle c0, py::handle w_ih, py::handle w_hh,
         py::handle b, py::handle lengths, py::handle peephole) {
        return is_f32(is_index_input(x) ? w_ih : x) ? k_lstm_forward<float>(x, h0, c0, w_ih, w_hh, b, lengths, peephole)
                         : k_lstm_forward<double>(x, h0, c0, w_ih, w_hh, b, lengths, peephole);
      },
      arg("x"), arg("h0"), arg("c0"), arg("w_ih"), arg("w_hh"), arg("b").none(true),
      arg("lengths").none(true) = py::none(), arg("peephole").none(true) = py::none());
  k.def(
      "lstm_backward",
      [](py::handle x, py::handle w_ih, py::handle w_hh, py::handle gates, py::handle h_prev,
         py::handle c, py::handle c_prev, py::handle dh, py::handle dh_n, py::handle dc_n,
         py::handle lengths, py::handle peephole) {
        return is_f32(is_index_input(x) ? w_ih : x) ? k_lstm_backward<float>(x, w_ih, w_hh, gates, h_prev, c, c_prev, dh,
                                                  dh_n, dc_n, lengths, peephole)
                         : k_lstm_backward<double>(x, w_ih, w_hh, gates, h_prev, c, c_prev, dh,
                                                   dh_n, dc_n, lengths, peephole);
      },
      arg("x"), arg("w_ih"), arg("w_hh"), arg("gates"), arg("h_prev"), arg("c"), arg("c_prev"),
      arg("dh").none(true), arg("dh_n").none(true), arg("dc_n").none(true),
      arg("lengths").none(true) = py::none(), arg("peephole").none(true) = py::none());
}

}  // namespace rnnx::bind
