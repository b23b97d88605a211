"""The solver registry: py-rattler in-process (default) and micromamba's dry run. Both return
lock records; a new solver is one module implementing :class:`~envpack.resolve.solver.Solver`
and one line in :data:`SOLVERS`.

The same channels, specs and virtual packages give the same lock with either backend: same
packages, builds, URLs, hashes, sizes, dependencies (tested on a real conda-forge subset and on
test channels). Each record is normalised by :func:`envpack.lock.record.make_record`, so that
what the two report differently in form only is the same in the lock.

Where the backends may legitimately still differ:

- Ties: when several solutions are equally good the two solvers may choose differently. None was
  found in the test channels (same-version builds, track_features, two channels in either order).
- Virtual packages: with micromamba 1.5.x a foreign ``win-*`` target always has ``__win=0`` and
  ``__archspec`` cannot be set (it has no override variables for them); use micromamba >= 2.0
  or rattler for recipes whose packages depend on them.
- Spec grammar: micromamba 2.8.1 does not read bracket specs (``x[version='>=1']``) inside
  repodata ``depends``, rattler does; conda-forge does not use them there.
"""

from __future__ import annotations

from collections.abc import Callable

from envpack.errors import SolveError
from envpack.resolve.micromamba_backend import MicromambaSolver
from envpack.resolve.rattler_backend import RattlerSolver
from envpack.resolve.solver import Solver

SOLVERS: dict[str, Callable[[str | None], Solver]] = {
    "rattler": lambda exe: RattlerSolver(),
    "micromamba": lambda exe: MicromambaSolver(exe),
}


def get_solver(name: str, micromamba_exe: str | None = None) -> Solver:
    """The solver ``name``; ``micromamba_exe`` is the host micromamba the micromamba one runs."""
    make = SOLVERS.get(name)
    if make is None:
        raise SolveError(f"unknown solver {name!r}; use 'rattler' or 'micromamba'")
    return make(micromamba_exe)
