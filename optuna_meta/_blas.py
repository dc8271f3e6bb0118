"""Run the small matrix products of the sampler and the pruner on one BLAS thread.

The surrogate multiplies matrices of a few hundred rows. Multi-threaded OpenBLAS spins its
threads up for each such product; on a busy machine (the user's training job owns the cores)
that made a 600x64x64 product 45x slower than on one thread (7.9 ms vs 0.18 ms, measured on
the project's 2-core machines). threadpoolctl, when installed (scikit-learn depends on it),
limits BLAS to one thread just around the sampler's work and restores it afterwards (in the main
thread only: see :func:`single_threaded_blas`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_controller: Any = None
_controller_lock = threading.Lock()
_UNAVAILABLE = object()
_active = 0  # blocks running now in the main thread (nested ones included)
_limiter: Any = None  # what restores the limits found when the outermost one began


def _get_controller() -> Any:
    global _controller
    with _controller_lock:
        if _controller is None:
            try:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
            except Exception:  # not installed or unsupported platform: run as is
                _controller = _UNAVAILABLE
        return _controller


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block when threadpoolctl is available, in the
    main thread only.

    Why only there: the limit is process-wide, so in a worker thread (``n_jobs>1``, a
    distributed worker) it would also throttle whatever the other threads compute meanwhile,
    and OpenBLAS may not raise its thread count again when asked from a thread after the main
    thread set it (measured with OpenBLAS 0.3.31): ``study.optimize(n_jobs=4)`` left BLAS on
    one thread for the rest of the process, the user's own numpy and scikit-learn work
    included. Nested blocks keep the limit until the outermost one ends.
    """
    global _active, _limiter
    controller = _get_controller()
    if controller is _UNAVAILABLE or threading.current_thread() is not threading.main_thread():
        yield
        return
    # Only the main thread gets here, so the count needs no lock.
    if _active == 0:
        _limiter = controller.limit(limits=1, user_api="blas")
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0:
            limiter, _limiter = _limiter, None
            limiter.restore_original_limits()
