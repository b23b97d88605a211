"""Huge input stays one readable line (issue 13, item 14): a recipe with 20,000 dependencies
that no channel has, and an error message of a third of a megabyte."""

from __future__ import annotations

from pathlib import Path

from envpack.errors import EnvpackError, first_line, summarise

from conftest import run_cli


def test_twenty_thousand_missing_dependencies(
    tmp_path: Path, server: object, cache_dir: Path
) -> None:
    url = server.url
    deps = "".join(f"  - pkg{i}\n" for i in range(20_000))
    recipe = tmp_path / "huge.yaml"
    recipe.write_text(f"name: huge\nchannels: [{url}]\ndependencies:\n{deps}")
    result = run_cli("lock", recipe)
    assert result.exit_code == 3, result.output[:2000]
    lines = result.stderr.splitlines()
    assert (
        lines[0]
        == "win-64: solving pkg0 pkg1 pkg2 pkg3 pkg4 pkg5 pkg6 pkg7 pkg8 pkg9 pkg10 pkg11 … and 19,988 more"
    )
    assert lines[1].startswith(
        "envpack: error: cannot solve 'pkg0 pkg1 pkg2 pkg3 pkg4 pkg5 pkg6 pkg7 pkg8 pkg9 pkg10 "
        "pkg11 … and 19,988 more' for win-64: no package matches pkg"
    )
    assert len(lines) == 2
    assert len(result.stderr) < 1000


def test_a_long_message_is_cut_and_says_how_much() -> None:
    text = "x" * 338_000
    cut = summarise(text)
    assert len(cut) < 1100
    assert cut.endswith("(337,040 more characters)")
    assert first_line(EnvpackError("short\nsecond line")) == "short"
    assert summarise("short") == "short"
