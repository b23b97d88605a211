"""Sizes, defined once: what envpack streams in, the most it believes of a JSON file, and the
split sizes it accepts (``--split`` and a recipe's ``split:``)."""

from __future__ import annotations

import re
from fractions import Fraction

from envpack.errors import RecipeError

CHUNK = 1 << 20  # bytes per read/write when streaming a package, a member or a part
# A manifest, repodata, SBOM or a package's info/ file bigger than this is hostile, not envpack's
# or a package's own: it is refused rather than read into memory.
MAX_JSON = 64 << 20

MIB = 1 << 20
SPLIT_MIN = MIB  # a smaller part gains nothing and makes thousands of files
FAT32_MAX_FILE = (1 << 32) - 1
# 4000 MiB: the round number users already type ("--split 4000M"), 96 MiB under FAT32's
# 4 GiB - 1 byte limit, so no part ever meets the limit even if a tool rounds sizes up.
FAT32_PRESET = 4000 * MIB
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``700M``, ``4000M``, ``1G``, ``1.5G``, ``fat32`` → bytes (K/M/G are powers of 1024).

    Sizes under 1 MiB (thousands of parts, nothing gained) or over FAT32's largest file
    (4 GiB − 1 byte) are refused.
    """
    raw = text.strip()
    if raw.lower() == "fat32":
        return FAT32_PRESET
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", raw, re.IGNORECASE)
    if not m:
        raise RecipeError(f"split size {text!r} is not a size; use e.g. 700M, 4000M, 1G or fat32")
    value = int(Fraction(m.group(1)) * _UNITS[m.group(2).upper()])
    check_split_size(value, text)
    return value


def check_split_size(value: int, shown: str | None = None) -> None:
    label = shown if shown is not None else f"{value} bytes"
    if value < SPLIT_MIN:
        raise RecipeError(f"split size {label} is under the 1 MiB minimum; use e.g. 700M")
    if value > FAT32_MAX_FILE:
        raise RecipeError(
            f"split size {label} is over FAT32's 4 GiB - 1 byte file limit; "
            "use fat32 (4000 MiB) or less"
        )
