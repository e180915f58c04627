// A binding as a plain CPython function (METH_FASTCALL | METH_KEYWORDS), for the calls
// whose own work is a few microseconds: pybind11's dispatcher (its argument vectors,
// casters and overload bookkeeping) took about 1,600 of the 27,000 instructions of a
// Tagger call at W_tiny's sizes (callgrind, before and after). The function takes its
// arguments as borrowed handles, by position or by name, and turns C++ exceptions into
// Python ones as pybind11's default translation and rnnx's own translator (module.cpp) do.
#pragma once

#include <pybind11/pybind11.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "rnnx/memory.hpp"

namespace rnnx::bind {

namespace py = pybind11;

// The Python error for the exception being handled (call from a catch block only).
inline void set_python_error() {
  try {
    throw;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {  // value_error, type_error, key_error, ...
    e.set_error();
  } catch (const rnnx::AllocationTooLarge& e) {
    PyErr_SetString(PyExc_MemoryError, e.what());
  } catch (const std::bad_alloc& e) {
    PyErr_SetString(PyExc_MemoryError, e.what());
  } catch (const std::domain_error& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::length_error& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::out_of_range& e) {
    PyErr_SetString(PyExc_IndexError, e.what());
  } catch (const std::range_error& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::overflow_error& e) {
    PyErr_SetString(PyExc_OverflowError, e.what());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "Caught an unknown exception!");
  }
}

// The arguments of a METH_FASTCALL | METH_KEYWORDS call, by position or keyword, into
// out[0..N): borrowed references, nullptr where not given. TypeError (naming `fn` and the
// argument) for too many positional arguments, an unknown or repeated keyword, or a
// missing one among the first `required`. Returns false with the error set.
template <int N>
bool parse_args(const char* fn, const char* const (&names)[N], int required,
                PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, PyObject* (&out)[N]) {
  for (int i = 0; i < N; ++i) out[i] = nullptr;
  if (nargs > N) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fn, N, nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    int i = 0;
    while (i < N && PyUnicode_CompareWithASCIIString(key, names[i]) != 0) ++i;
    if (i == N) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fn, key);
      return false;
    }
    if (out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fn, names[i]);
      return false;
    }
    out[i] = args[nargs + k];
  }
  for (int i = 0; i < required; ++i)
    if (!out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fn, names[i]);
      return false;
    }
  return true;
}

// A str argument's text (bytes taken as UTF-8), as pybind11's std::string caster takes
// it; TypeError naming the argument otherwise.
inline std::string str_arg(PyObject* o, const char* name) {
  if (PyBytes_Check(o)) return std::string(PyBytes_AS_STRING(o), size_t(PyBytes_GET_SIZE(o)));
  if (!PyUnicode_Check(o))
    throw py::type_error(std::string(name) + " must be a str, got " + Py_TYPE(o)->tp_name);
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(o, &n);
  if (!s) throw py::error_already_set();
  return std::string(s, size_t(n));
}

// A bool argument as pybind11's bool caster takes one where it may convert: True, False,
// None (False), or anything whose __bool__ gives one (0 and 1, a NumPy bool);
// TypeError naming the argument otherwise.
inline bool bool_arg(PyObject* o, const char* name) {
  if (o == Py_True) return true;
  if (o == Py_False || o == Py_None) return false;
  PyNumberMethods* num = Py_TYPE(o)->tp_as_number;
  if (num && num->nb_bool) {
    const int v = num->nb_bool(o);
    if (v == 0 || v == 1) return v == 1;
    PyErr_Clear();
  }
  throw py::type_error(std::string(name) + " must be True or False, got " + Py_TYPE(o)->tp_name);
}

}  // namespace rnnx::bind
