"""The default solver: py-rattler, in-process, for any target from any host."""

from __future__ import annotations

import asyncio
from typing import Literal

from envpack.channels import redact
from envpack.errors import DownloadError, SolveError, first_line
from envpack.lock.record import LockedPackage, make_record, rattler_record_dict
from envpack.resolve.solver import (
    SolveRequest,
    check_hashes,
    invalid_spec,
    solver_message,
    summarise_problems,
)


class RattlerSolver:
    """py-rattler, in-process, for any target from any host."""

    name = "rattler"

    def solve(self, request: SolveRequest) -> list[LockedPackage]:
        import rattler
        from rattler.exceptions import (
            FetchRepoDataError,
            GatewayError,
            InvalidMatchSpecError,
            SolverError,
        )

        vps = [
            rattler.GenericVirtualPackage(
                rattler.PackageName(vp.name),
                rattler.Version(vp.version),
                rattler.BuildString(vp.build),
            )
            for vp in request.virtual_packages
        ]
        cache_action: Literal["force-cache-only", "cache-or-fetch"] = (
            "force-cache-only" if request.offline else "cache-or-fetch"
        )
        gateway = rattler.Gateway(
            cache_dir=request.cache_dir,
            default_config=rattler.SourceConfig(cache_action=cache_action, sharded_enabled=False),
        )
        sources = [rattler.Channel(c.url + "/") for c in request.channels]
        try:
            records = asyncio.run(
                rattler.solve(
                    sources=sources,
                    specs=list(request.specs),
                    platforms=[rattler.Subdir(request.platform), rattler.Subdir("noarch")],
                    virtual_packages=vps,
                    gateway=gateway,
                )
            )
        except SolverError as exc:
            raise SolveError(solver_message(summarise_problems(str(exc)), request)) from None
        except (FetchRepoDataError, GatewayError) as exc:
            where = ", ".join(c.public_url for c in request.channels)
            hint = " (--offline: nothing cached yet; build once online)" if request.offline else ""
            raise DownloadError(
                f"cannot fetch repodata from {where}{hint}: {redact(_error_text(exc))}"
            ) from None
        except (InvalidMatchSpecError, ValueError, TypeError) as exc:
            raise invalid_spec(request, first_line(exc)) from None
        except Exception as exc:  # rattler's own errors share no base class
            if type(exc).__module__.split(".")[0] in {"rattler", "exceptions"}:
                raise SolveError(
                    f"solving {' '.join(request.specs)!r} for {request.platform} failed: "
                    f"{redact(first_line(exc))}"
                ) from None
            raise
        return check_hashes([make_record(rattler_record_dict(r)) for r in records])


def _error_text(exc: BaseException) -> str:
    """rattler's errors put the cause on later lines ("Caused by: ..."): keep it on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__
