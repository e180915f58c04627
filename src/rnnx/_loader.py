"""Import the compiled kernels built for the best instruction set this CPU runs.

The extension is built twice: ``_core_generic`` for any x86-64 (or other) CPU and,
on x86-64, ``_core_avx2`` with AVX2 and FMA. The generic module is imported first
(it is safe everywhere) and asked whether the CPU has AVX2 and FMA; only then is the
AVX2 module imported, so a CPU without them never executes an AVX2 instruction.

The environment variable ``RNNX_ISA`` (``auto``, ``generic`` or ``avx2``) overrides
the choice, e.g. to test the portable build on a machine that has AVX2.
"""

import os

from . import _core_generic

_CHOICES = ("auto", "generic", "avx2")


def _load():
    choice = os.environ.get("RNNX_ISA", "auto").strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ImportError(f"RNNX_ISA must be one of {', '.join(_CHOICES)}, got {choice!r}")
    if choice == "generic":
        return _core_generic
    if _core_generic.cpu_has_avx2_fma():
        try:
            from . import _core_avx2
        except ImportError:  # built for a non-x86 target: there is no avx2 module
            _core_avx2 = None
        if _core_avx2 is not None:
            return _core_avx2
    if choice == "avx2":
        raise ImportError("RNNX_ISA=avx2, but this CPU lacks AVX2/FMA or this build has no avx2 module")
    return _core_generic


core = _load()
