"""Which reader opens a bundle: ONE explicit, ordered list, nothing registered by import."""

from __future__ import annotations

from pathlib import Path

from envpack.archive.base import BundleReader
from envpack.archive.folder import FolderBundleReader
from envpack.archive.sevenzip import SevenZipReader
from envpack.archive.split import SplitReader
from envpack.archive.tar import TarBundleReader
from envpack.archive.zip import ZipBundleReader
from envpack.errors import BundleError

# The order is the decision: the 7z probe is exact (magic bytes), and it goes before the zip
# reader because zipfile.is_zipfile() also says yes to a 7z whose last stored member is a .conda
# (a zip, end record and all); split parts go before the folder reader, which claims every folder
# (a folder of parts is not an unpacked bundle).
READERS: tuple[type[BundleReader], ...] = (
    TarBundleReader,
    SplitReader,
    SevenZipReader,
    ZipBundleReader,
    FolderBundleReader,
)


def is_bundle(path: Path) -> bool:
    """Whether some reader claims ``path`` (cheap; says nothing about the bundle being sound)."""
    return any(cls.probe(Path(path)) for cls in READERS)


def open_bundle(path: Path) -> BundleReader:
    """Open a bundle in whichever form it comes; :class:`BundleError` if it is none of them."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: no such bundle")
    for cls in READERS:
        if cls.probe(path):
            return cls(path)
    raise BundleError(
        f"{path}: not a bundle (expected a .zip, .7z or .tar, a self-extracting .bat or .sh, "
        "or an unpacked folder)"
    )
