"""Archive: the containers a bundle is written to (zip, 7z, tar, split parts) and read back from.

Writing goes through :func:`write_bundle` / :func:`stage_bundle` (``write``); reading through
:func:`open_bundle` (``readers``), which asks one ordered list of readers.
"""

from envpack.archive.base import BundleReader, unsafe_reason
from envpack.archive.readers import is_bundle, open_bundle
from envpack.archive.sevenzip import SevenZipReader
from envpack.archive.split import PartWriter, SplitReader
from envpack.archive.write import FORMATS, stage_bundle, stage_sfx_from_zip, write_bundle

__all__ = [
    "FORMATS",
    "BundleReader",
    "PartWriter",
    "SevenZipReader",
    "SplitReader",
    "is_bundle",
    "open_bundle",
    "stage_bundle",
    "stage_sfx_from_zip",
    "unsafe_reason",
    "write_bundle",
]
