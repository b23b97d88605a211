"""The two-environment bundle the multi-environment tests share, built once per session:
"alpha" (tool, docs, a post-install script) and "beta" (libzlib) from the standard channel over
real HTTP, with the micromamba stand-in; each also built alone, for comparisons."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import envpack.bundle.multi
from envpack.bundle.stubs import StubContext
from wine import POST_INSTALL_NAME, POST_INSTALL_SCRIPT, micromamba_standin

from conftest import run_cli, write_recipe
from http_server import ChannelServer

_BUILT: Built | None = None


@dataclass
class Built:
    work: Path
    multi: Path  # alpha+beta-win-64.zip
    alpha: Path  # alpha-win-64.zip, built alone
    beta: Path
    recipes: tuple[Path, Path]
    exe: Path
    channel: Path
    contexts: list[StubContext]  # the environments' StubContexts, as the build rendered them


def build_multi_demo(std_channel: Path, work: Path) -> Built:
    """The bundle ``alpha+beta-win-64.zip`` and the two alone (once per session)."""
    global _BUILT
    if _BUILT is not None:
        return _BUILT
    # A copy of its own: wine.shutdown() (each wine module's teardown) removes the stand-ins,
    # and later modules build again with the exe the locks recorded.
    exe = work / "micromamba.exe"
    shutil.copyfile(micromamba_standin(), exe)
    (work / POST_INSTALL_NAME).write_bytes(POST_INSTALL_SCRIPT)
    # Relative prefixes land in the unpacked bundle's folder: the tests can find them.
    extra = "envpack:\n  prefix: 'installed\\{name}'\n"
    captured: list[list[StubContext]] = []
    real = envpack.bundle.multi.render_multi_setup

    def spy(name: str, contexts: list[StubContext]) -> bytes:
        captured.append(contexts)
        return real(name, contexts)

    with ChannelServer(std_channel) as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENVPACK_CACHE_DIR", str(work / "cache"))
        mp.setattr(envpack.bundle.multi, "render_multi_setup", spy)
        alpha = write_recipe(
            work / "alpha.yaml",
            [server.url],
            ["tool", "docs"],
            extra + f"  post_install:\n    - '{POST_INSTALL_NAME}'\n",
        )
        beta = write_recipe(work / "beta.yaml", [server.url], ["libzlib"], extra)
        for args in ((alpha, beta), (alpha,), (beta,)):
            out = work / ("multi" if len(args) == 2 else "single")
            result = run_cli("build", *args, "-o", out, "--micromamba-exe", exe, "--no-sfx")
            assert result.exit_code == 0, result.output
    _BUILT = Built(
        work=work,
        multi=work / "multi" / "alpha+beta-win-64.zip",
        alpha=work / "single" / "alpha-win-64.zip",
        beta=work / "single" / "beta-win-64.zip",
        recipes=(alpha, beta),
        exe=exe,
        channel=std_channel,
        contexts=captured[0],
    )
    return _BUILT
