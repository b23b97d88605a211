"""An update carries what changed: one ~2 MB package changed in a 22-package environment gives
an update bundle of about that package's size (measured: 2,064,870 bytes for a 2,002,689-byte
package, against 6,156,718 for the full bundle; the rest is update.bat, the manifest with both
package lists, the SBOM and the README)."""

from __future__ import annotations

from pathlib import Path

from update_factory import Versions, build_full, build_update

from channel_factory import Pkg, make_channel
from conftest import write_recipe


def test_one_changed_package_makes_an_update_of_about_its_size(tmp_path: Path) -> None:
    others = [Pkg(f"p{i:02d}", "1.0", random_bytes=200_000) for i in range(20)]
    big = [Pkg("big", "1.0", random_bytes=2_000_000), Pkg("big", "1.1", random_bytes=2_000_000)]
    channel = make_channel(tmp_path / "channel", [*others, *big])
    exe = tmp_path / "stand-in.exe"
    exe.write_bytes(b"MZ stand-in" * 1000)
    v = Versions(tmp_path, channel, exe, tmp_path / "cache")
    for version, spec in (("v1", "big 1.0.*"), ("v2", "big 1.1.*")):
        (tmp_path / version).mkdir()
        deps = [p.name for p in others] + [spec]
        v.recipes[version] = write_recipe(tmp_path / version / "demo.yaml", [str(channel)], deps)
    full_v1 = build_full(v, "v1")
    full_v2 = build_full(v, "v2")
    (update,) = build_update(v, "v2", full_v1, tmp_path / "update")
    package = (channel / "win-64" / "big-1.1-0.conda").stat().st_size
    size = update.stat().st_size
    assert package < size < package + 100_000
    assert size * 2 < full_v2.stat().st_size
