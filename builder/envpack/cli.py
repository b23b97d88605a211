"""The command line: click parses, builds one options object, calls one core function.

Only this module prints or exits. Every :class:`EnvpackError` becomes one line on stderr and the
exception's exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from envpack import __version__
from envpack.errors import EnvpackError, summarise

F = TypeVar("F", bound=Callable[..., Any])


def _options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


# Options shared by `lock` and `build`, defined once (pip-tools style).
recipe_argument = click.argument("recipe", type=click.Path(path_type=Path, dir_okay=False))

lock_options = _options(
    click.option("--platform", "platform", help="Target platform (default: the recipe's, win-64)."),
    click.option(
        "--solver",
        type=click.Choice(["rattler", "micromamba"]),
        help="Solver backend (default: the recipe's, rattler).",
    ),
    click.option(
        "--solver-micromamba",
        type=click.Path(path_type=Path, dir_okay=False),
        help="The host micromamba that --solver micromamba runs (default: micromamba on PATH).",
    ),
    click.option(
        "--micromamba-exe",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="Ship this micromamba executable instead of conda-forge's package.",
    ),
    click.option("--offline", is_flag=True, help="Use only the cache; never touch the network."),
    click.option(
        "--lock-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Lock file (default: <recipe>.lock.yaml beside the recipe).",
    ),
    click.option(
        "--cache-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="ENVPACK_CACHE_DIR",
        help="Package and repodata cache (default: the user cache folder).",
    ),
    click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors."),
    click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
)


# Options of the commands that download packages.
fetch_options = _options(
    click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=60.0,
        show_default=True,
        envvar="ENVPACK_TIMEOUT",
        metavar="SECONDS",
        help="Seconds a download may wait for data (for a connection: at most 15) before the "
        "attempt is abandoned; an attempt averaging under 1 KiB/s over that long is abandoned "
        "too. Failed attempts are retried 5 times with backoff, resuming (env: ENVPACK_TIMEOUT).",
    ),
)


class Reporter:
    def __init__(self, quiet: bool, as_json: bool) -> None:
        self.quiet = quiet or as_json
        self._tty = sys.stderr.isatty()
        self._bars: list[Any] = []

    def info(self, message: str) -> None:
        if not self.quiet:
            click.echo(summarise(message), err=True)

    def progress(self) -> Any:
        from envpack.fetch.progress import NullProgress

        if self.quiet:
            return NullProgress()
        from envpack.fetch.progress import PlainProgress, RichProgress

        progress = RichProgress() if self._tty else PlainProgress(self.info)
        self._bars.append(progress)
        return progress

    def close(self) -> None:
        """Stop every progress display, whatever happened (a bar hides the cursor)."""
        for bar in self._bars:
            bar.close()


def _run(func: Callable[[], Any], reporter: Reporter | None = None) -> Any:
    try:
        try:
            return func()
        finally:
            # Before any message: a live bar would otherwise swallow it or keep the cursor hidden.
            if reporter is not None:
                reporter.close()
    except EnvpackError as exc:
        message = summarise(" ".join(str(exc).split()))
        click.echo(f"envpack: error: {message}", err=True)
        problems = getattr(exc, "problems", None)
        if problems:
            for problem in problems:
                click.echo(f"  - {problem}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        # Downloads are stopped and their part files removed by then (download.Fetcher).
        click.echo("envpack: interrupted", err=True)
        sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="envpack")
def main() -> None:
    """Pack a conda environment into a bundle that installs on a PC with no network."""


def _lock_opts(kw: dict[str, Any], mode: str) -> Any:
    from envpack.options import LockOptions

    return LockOptions(
        recipe=kw["recipe"],
        platform=kw["platform"],
        solver=kw["solver"],
        solver_micromamba=kw["solver_micromamba"],
        micromamba_exe=kw["micromamba_exe"],
        offline=kw["offline"],
        mode=mode,
        cache_dir=kw["cache_dir"],
        lock_file=kw["lock_file"],
    )


@main.command("lock")
@recipe_argument
@lock_options
@click.option("--check", is_flag=True, help="Fail (exit 4) if the lock would change.")
def lock_cmd(**kw: Any) -> None:
    """Solve RECIPE and write its lock file beside it."""
    from envpack import pipeline

    reporter = Reporter(kw["quiet"], kw["as_json"])
    result = _run(
        lambda: pipeline.lock(_lock_opts(kw, "locked" if kw["check"] else "auto"), reporter),
        reporter,
    )
    if kw["as_json"]:
        click.echo(json.dumps({"lock_file": str(result.path), "changed": result.changed}))
    elif not kw["quiet"]:
        state = "updated" if result.changed else "unchanged"
        click.echo(f"{result.path} ({state})")


@main.command("build")
@click.argument("recipes", type=click.Path(path_type=Path, dir_okay=False), nargs=-1)
@lock_options
@fetch_options
@click.option(
    "--from",
    "from_bundle",
    type=click.Path(path_type=Path, exists=True),
    help="Rebuild an old bundle (zip, .bat or folder) from its own lock.",
)
@click.option(
    "--update-from",
    "update_from",
    type=click.Path(path_type=Path, exists=True),
    help="Write an update bundle from OLD (a bundle, a lock, or what 'micromamba list "
    "--explicit --md5' printed on the PC) to RECIPE's lock: only the packages OLD lacks.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("dist"),
    show_default=True,
    help="Folder for the bundles.",
)
@click.option("--locked", is_flag=True, help="Fail if the lock would change.")
@click.option("--frozen", is_flag=True, help="Use the lock as it is, without checking the recipe.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Concurrent downloads.",
)
@click.option(
    "--sfx/--no-sfx",
    default=None,
    help="Also write the self-extracting <name>-<platform>-setup.bat (Windows) or -setup.sh "
    "(Linux, macOS) beside the bundle (default: the recipe's envpack.sfx, else only the "
    "bundle; --no-sfx overrides the recipe).",
)
@click.option("--verify-cache", is_flag=True, help="Re-hash cached packages before using them.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["zip", "7z", "tar"]),
    help="Bundle container (default: the recipe's envpack.format, else zip for Windows and "
    "tar for Linux and macOS).",
)
@click.option(
    "--split",
    metavar="SIZE",
    help="Write NAME.001, NAME.002, ... of SIZE (700M, 4000M, 1G, fat32) with join.bat.",
)
@click.option(
    "--name",
    "bundle_name",
    help="Name of a bundle of several environments (default: their names joined by '+').",
)
def build_cmd(**kw: Any) -> None:
    """Build the offline bundle for RECIPE into --output (default dist/).

    RECIPE is an environment.yml-style recipe, or an existing lock: conda-lock.yml, pixi.lock,
    an @EXPLICIT file, or an envpack lock. Several RECIPEs make one bundle holding every
    environment, each package stored once (setup.bat installs all, or those named).
    """
    from envpack.options import BuildOptions

    recipes = kw.pop("recipes")
    kw["recipe"] = recipes[0] if recipes else None
    if len(recipes) > 1 and (kw["update_from"] is not None or kw["lock_file"] is not None):
        raise click.UsageError("--update-from and --lock-file take one RECIPE")
    if kw["bundle_name"] is not None and len(recipes) < 2:
        raise click.UsageError("--name names a bundle of several environments (give 2+ RECIPEs)")

    if kw["locked"] and kw["frozen"]:
        raise click.UsageError("--locked and --frozen exclude each other")
    if (kw["recipe"] is None) == (kw["from_bundle"] is None):
        raise click.UsageError("give a RECIPE or --from BUNDLE (one of them)")
    if kw["update_from"] is not None and kw["from_bundle"] is not None:
        raise click.UsageError("--update-from needs a RECIPE or lock, not --from")
    mode = "locked" if kw["locked"] else "frozen" if kw["frozen"] else "auto"
    reporter = Reporter(kw["quiet"], kw["as_json"])
    split = None
    if kw["split"]:
        from envpack.limits import parse_size

        split = _run(lambda: parse_size(kw["split"]))
    options = BuildOptions(
        lock=_lock_opts(kw, mode),
        output_dir=kw["output"],
        concurrency=kw["jobs"],
        sfx=kw["sfx"],
        verify_cache=kw["verify_cache"],
        from_bundle=kw["from_bundle"],
        update_from=kw["update_from"],
        format=kw["fmt"],
        split=split,
        timeout=kw["timeout"],
        more_recipes=tuple(recipes[1:]),
        name=kw["bundle_name"],
    )
    if options.update_from is not None:
        # An update bundle is a feature on top of the pipeline (envpack.update), not a step of it.
        from envpack.update.build import build_update

        old = options.update_from
        result = _run(lambda: build_update(options, old, reporter), reporter)
    else:
        # Several environments are a feature on top of the pipeline (envpack.multibuild).
        from envpack.multibuild import build_any

        result = _run(lambda: build_any(options, reporter), reporter)
    if kw["as_json"]:
        click.echo(
            json.dumps(
                {
                    "outputs": [str(p) for p in result.outputs],
                    "lock_file": str(result.lock_file),
                    "lock_changed": result.lock_changed,
                    "packages": result.packages,
                    "bytes": result.total_bytes,
                }
            )
        )
    elif not kw["quiet"]:
        for path in result.outputs:
            click.echo(str(path))


bundle_argument = click.argument("bundle", type=click.Path(path_type=Path, exists=True))
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


@main.command("inspect")
@bundle_argument
@json_option
@click.option("--sbom", is_flag=True, help="Print the bundle's CycloneDX SBOM.")
def inspect_cmd(bundle: Path, as_json: bool, sbom: bool) -> None:
    """Show what BUNDLE (zip, self-extracting .bat, or folder) holds. No network."""
    from envpack import snapshot

    info = _run(lambda: snapshot.inspect_bundle(bundle, sbom=sbom))
    if as_json:
        click.echo(json.dumps(info.get("sbom") if sbom else info, indent=1, sort_keys=True))
    else:
        click.echo(_run(lambda: snapshot.format_inspect(info, sbom=sbom)))
    _exit_on_problems(info["problems"], bundle)


@main.command("verify")
@bundle_argument
@json_option
def verify_cmd(bundle: Path, as_json: bool) -> None:
    """Check every file, package and record of BUNDLE; exit 0 only when all hold."""
    from envpack import snapshot
    from envpack.errors import VerificationFailed

    problems = _run(lambda: snapshot.verify_bundle(bundle))
    if as_json:
        click.echo(json.dumps({"bundle": str(bundle), "ok": not problems, "problems": problems}))
        if problems:
            sys.exit(VerificationFailed.exit_code)
        return
    if problems:
        _run(lambda: _raise(VerificationFailed(f"{bundle}: {len(problems)} problem(s)", problems)))
    click.echo(f"{bundle}: OK")


def _raise(exc: Exception) -> None:
    raise exc


@main.command("diff")
@click.argument("a", type=click.Path(path_type=Path, exists=True))
@click.argument("b", type=click.Path(path_type=Path, exists=True))
@click.option("--platform", help="Platform to compare when a lock holds several.")
@click.option(
    "--env",
    "environment",
    help="The environment to compare in a bundle of several (default: all its packages).",
)
@json_option
def diff_cmd(
    a: Path, b: Path, platform: str | None, environment: str | None, as_json: bool
) -> None:
    """Packages added, removed and changed from A to B (bundles or lock files)."""
    from envpack import snapshot

    result = _run(lambda: snapshot.diff(a, b, platform, environment))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1))
    else:
        click.echo(snapshot.format_diff(result))
    _exit_on_problems(list(result.problems), None)


def _exit_on_problems(problems: list[str], bundle: Path | None) -> None:
    """inspect and diff show what they can, but a bundle found damaged or tampered with on the
    way is not a success: exit 8, as verify does, with a pointer to it on stderr."""
    if problems:
        from envpack.errors import VerificationFailed

        where = f"{bundle}: " if bundle else ""
        click.echo(
            f"envpack: {where}{len(problems)} problem(s) noticed; run envpack verify", err=True
        )
        sys.exit(VerificationFailed.exit_code)


def entry() -> None:
    """The console script: run the CLI, then leave without interpreter finalisation.

    py-rattler's runtime threads crash CPython's finalisation after a solve in a fifth of runs
    (measured here: 9 of 40 ``envpack lock`` runs ended in SIGABRT "PyGILState_Release" or
    SIGSEGV after a successful solve). Everything envpack writes is closed by then, so flushing
    the standard streams and calling ``os._exit`` gives the exit status the command earned.
    """
    import os

    try:
        main.main(prog_name="envpack")
        code = 0
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            click.echo(str(exc.code), err=True)
            code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
