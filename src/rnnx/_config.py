"""``rnnx.show_config()``: what this rnnx runs on, for bug reports and benchmark records.

Everything here is read from the running process (the compiled core, the CPU, NumPy);
nothing is computed or timed.
"""

import os
import platform
import sys
import warnings

import numpy as np

from . import _loader

__all__ = ["show_config"]


def _cpu_model():
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _usable_cpus():
    """How many CPUs this process may run on (its affinity mask), or None if unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _numpy_blas():
    """NumPy's build-time BLAS (name, version, configuration) as a dict, or None.

    ``numpy.show_config(mode="dicts")`` exists from NumPy 1.26; it reads a static
    module, so it is cheap. Older NumPy gives None.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = np.show_config(mode="dicts")
    except (TypeError, ValueError, ImportError):
        return None
    blas = (info or {}).get("Build Dependencies", {}).get("blas")
    if not blas:
        return None
    keep = ("name", "version", "openblas configuration")
    return {k: blas[k] for k in keep if k in blas}


def _blas_threads():
    """The thread pools of the loaded BLAS/OpenMP libraries (threadpoolctl), or None.

    Only when threadpoolctl is installed; rnnx does not depend on it.
    """
    try:
        import threadpoolctl
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pools = threadpoolctl.threadpool_info()
    return [{k: p.get(k) for k in ("internal_api", "num_threads", "version")} for p in pools]


def _config():
    core = _loader.core
    supported, features = _loader._supported()
    return {
        "rnnx": {
            "version": _version(),
            "isa": core.isa,
            "isa_available": list(supported),
            "RNNX_ISA": os.environ.get("RNNX_ISA"),
            "num_threads": core.num_threads(),
            "RNNX_NUM_THREADS": os.environ.get("RNNX_NUM_THREADS"),
            "core_module": os.path.basename(getattr(core, "__file__", "") or ""),
            # the core does not report its Eigen version today; shown if it ever does
            "eigen_version": getattr(core, "eigen_version", None),
        },
        "cpu": {
            "model": _cpu_model(),
            "features": {k: bool(v) for k, v in features.items()},
            "logical_cpus": os.cpu_count(),
            "usable_cpus": _usable_cpus(),
        },
        "numpy": {
            "version": np.__version__,
            "blas": _numpy_blas(),
            "thread_pools": _blas_threads(),
        },
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        },
    }


def _version():
    from . import __version__  # read at call time: the package has finished importing
    return __version__


_NONE_TEXT = {
    "RNNX_NUM_THREADS": "unset",
    "RNNX_ISA": "unset (auto)",
    "eigen_version": "not reported by the core",
    "thread_pools": "unknown (threadpoolctl is not installed)",
}


def _format(value, key=None):
    if value is None:
        return _NONE_TEXT.get(key, "not available")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_format(v) for v in value) if value else "none"
    return str(value)


def show_config(file=None, quiet=False):
    """Print, and return, the versions, instruction set, CPU and threads rnnx runs with.

    Parameters
    ----------
    file : file-like, optional
        Where to print (anything with ``write``); ``sys.stdout`` when None.
    quiet : bool, default False
        Return the dict without printing.

    Returns
    -------
    config : dict
        Sections ``"rnnx"`` (``version``, ``isa`` the build in use, ``isa_available``
        the builds this CPU can run, ``num_threads``, the environment variables
        ``RNNX_ISA`` and ``RNNX_NUM_THREADS`` (None when unset), ``core_module``,
        ``eigen_version`` the Eigen the core was compiled with), ``"cpu"`` (``model``, ``features`` as the core
        detects them, ``logical_cpus``, ``usable_cpus``), ``"numpy"`` (``version``,
        ``blas`` its build-time BLAS, ``thread_pools`` from threadpoolctl when it is
        installed, else None) and ``"python"``. Plain strings, numbers, bools, lists and
        dicts: it serialises to JSON as it is.

    Raises
    ------
    TypeError
        If `file` has no ``write`` method or `quiet` is not a bool.

    Examples
    --------
    >>> import rnnx
    >>> cfg = rnnx.show_config(quiet=True)
    >>> cfg["rnnx"]["isa"] == rnnx.isa
    True
    """
    if not isinstance(quiet, (bool, np.bool_)):
        raise TypeError(f"quiet must be a bool, got {type(quiet).__name__}")
    if file is None:
        file = sys.stdout
    elif not callable(getattr(file, "write", None)):
        raise TypeError(f"file must be a writable file-like object, got {type(file).__name__}")
    config = _config()
    if not quiet:
        for section, entries in config.items():
            print(f"{section}:", file=file)
            width = max(len(k) for k in entries)
            for key, value in entries.items():
                print(f"  {key:<{width}}  {_format(value, key)}", file=file)
    return config
