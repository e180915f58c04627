"""Import the compiled kernels built for the best instruction set this CPU runs.

The extension is built once per level: ``_core_generic`` for any CPU and, on x86-64,
``_core_avx2`` (AVX2 + FMA) and ``_core_avx512`` (AVX-512 F/DQ/VL/BW). The portable
module is imported first (safe everywhere) and asked what the CPU supports; only then
is a faster build imported, so a CPU never meets an instruction it lacks.

``auto`` picks avx512 on Intel CPUs that have it, avx2 on other CPUs with AVX2 and FMA
(AMD's Zen 4 runs 512-bit vectors in two halves: Eigen's AVX-512 code measured ~20%
slower than its AVX2 code there), else generic. The environment variable ``RNNX_ISA``
(``auto``, ``generic``, ``avx2``, ``avx512``) overrides the choice; a level the CPU
cannot run is an ImportError, never a crash.
"""

import importlib
import os

from . import _core_generic

_LEVELS = ("generic", "avx2", "avx512")


def _supported():
    f = _core_generic.cpu_features()
    ok = ["generic"]
    if f["avx2"] and f["fma"]:
        ok.append("avx2")
        if f["avx512"]:
            ok.append("avx512")
    return ok, f


def _load():
    choice = os.environ.get("RNNX_ISA", "auto").strip().lower() or "auto"
    if choice not in ("auto",) + _LEVELS:
        raise ImportError(f"RNNX_ISA must be one of auto, {', '.join(_LEVELS)}; got {choice!r}")
    ok, features = _supported()
    if choice == "auto":
        choice = ok[-1]
        if choice == "avx512" and not features["intel"]:
            choice = "avx2"
    elif choice not in ok:
        raise ImportError(f"RNNX_ISA={choice}, but this CPU supports only {', '.join(ok)}")
    if choice == "generic":
        return _core_generic
    try:
        return importlib.import_module(f"._core_{choice}", __package__)
    except ImportError:
        if os.environ.get("RNNX_ISA", "auto").strip().lower() not in ("", "auto"):
            raise
        return _core_generic  # a build without that level (not x86-64)


core = _load()
