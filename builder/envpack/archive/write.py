"""Write a bundle in the container the build asked for, staged, then committed in one step.

:func:`write_bundle` / :func:`stage_bundle` stream the entries through a :class:`PartWriter`
(one file, or ``NAME.001``, ``NAME.002``, … when split) into the zip, 7z or tar writer, under a
temporary folder of the output folder; :class:`StagedBundle` renames everything into place only
when every output of the build was written. File names are checked here (:func:`check_filename`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from envpack.archive.joinbat import SplitInfo, check_split_folder, remove_stale, write_split_files
from envpack.archive.kcopy import reserve
from envpack.archive.sevenzip import write_7z_stream
from envpack.archive.sfxcopy import write_sfx_from_zip
from envpack.archive.split import MAX_PARTS, PartWriter
from envpack.archive.tar import write_tar_stream
from envpack.archive.zip import write_zip_stream
from envpack.bundle.manifest import Entry, check_entries, is_package
from envpack.errors import BundleError, RecipeError
from envpack.limits import check_split_size
from envpack.names import file_name_problem

FORMATS = ("zip", "7z", "tar")

_BAD_NAME_CHARS = set('\\/:*?"<>|')


# --------------------------------------------------------------------------- sizes


def check_filename(name: str) -> None:
    """A bundle file name must be one safe Windows file name that join.bat can quote."""
    problem = file_name_problem(name)
    if problem is None and any(ch in _BAD_NAME_CHARS for ch in name):
        problem = "a character Windows file names cannot hold"
    if problem:
        raise BundleError(f"{name!r} is not a valid Windows file name for a bundle ({problem})")


# --------------------------------------------------------------------------- part writer


# --------------------------------------------------------------------------- containers


# --------------------------------------------------------------------------- write_bundle


def bundle_filename(stem: str, fmt: str, header: bytes) -> str:
    if header:
        return f"{stem}.sh" if fmt == "tar" else f"{stem}.bat"
    return f"{stem}.{fmt}"


def write_bundle(
    out_dir: Path,
    stem: str,
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    fmt: str = "zip",
    header: bytes = b"",
    split: int | None = None,
    advance: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write the bundle into ``out_dir``; return the files written, the bundle (or parts) first.

    The file is ``<stem>.zip``, ``.7z`` or ``.tar``; the self-extracting form (a ``header``
    before the archive) is ``<stem>.bat`` (a zip) or ``<stem>.sh`` (a tar): 7z readers do not
    look past a batch header, so there is no self-extracting 7z.

    With ``split`` (bytes per part, see :func:`parse_size`) the bundle is written as
    ``NAME.001``, ``NAME.002``, … with ``join.bat``, ``NAME.sha256`` and ``README.txt`` beside
    them. ``join.bat`` and ``README.txt`` have fixed names, so two split bundles need two folders;
    writing a second one into a folder that holds another's join.bat is refused.

    Everything is written under temporary names in ``out_dir`` and renamed at the end; on any
    failure nothing new is left behind. Leftovers of an earlier build of the same name in the
    other form (parts beside a new whole file, or the reverse) are removed, so join.bat can never
    rebuild an old bundle over a new one.
    """
    staged = stage_bundle(out_dir, stem, top, entries, epoch, fmt, header, split, advance)
    try:
        return staged.commit()
    finally:
        staged.discard()


@dataclass
class StagedBundle:
    """A bundle written in full under a temporary folder of ``out_dir``, not yet in place.

    A build writes every output (the zip, the self-extracting .bat) staged first and commits
    them together, so a failure half-way (disk full in the second) leaves the folder as it was.
    """

    out_dir: Path
    name: str
    tmp: Path
    files: list[Path]  # inside tmp: the bundle (or its parts) first
    parts: int  # 0 for a whole file

    def commit(self) -> list[Path]:
        results: list[Path] = []
        for path in self.files:
            final = self.out_dir / path.name
            os.chmod(path, 0o644)
            os.replace(path, final)
            results.append(final)
        remove_stale(self.out_dir, self.name, self.parts)
        return results

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def remove_old_sfx(out_dir: Path, stem: str) -> list[Path]:
    """Remove the self-extracting form an earlier build of ``stem`` left in ``out_dir``
    (``<stem>-setup.bat``, ``-setup.sh``, or the ``<stem>-setup`` folder of its parts); return what
    was removed. A build without ``--sfx`` calls this after committing its bundle: an old
    installer beside a new zip would install the old packages."""
    removed: list[Path] = []
    for suffix in (".bat", ".sh"):
        old = out_dir / f"{stem}-setup{suffix}"
        if old.is_file():
            old.unlink()
            removed.append(old)
    folder = out_dir / f"{stem}-setup"
    name = f"{stem}-setup.bat"
    if folder.is_dir() and (folder / f"{name}.001").is_file():
        remove_stale(folder, name, 0)
        (folder / f"{name}.001").unlink(missing_ok=True)
        removed.append(folder)
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when nothing but the old parts' files was in it
    return removed


_STAGING_RE = re.compile(r"^\.envpack-(?P<pid>\d+)-.*\.tmp$")


def _remove_dead_staging(out_dir: Path) -> None:
    """Staging folders of builds that were killed (kill -9, power cut) are removed by the next
    build into the same folder; those of a build still running are left alone."""
    try:
        candidates = [p for p in out_dir.iterdir() if _STAGING_RE.match(p.name)]
    except OSError:
        return
    for path in candidates:
        m = _STAGING_RE.match(path.name)
        assert m is not None
        if not _process_alive(int(m["pid"])):
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, but someone else's
    return True


def stage_bundle(
    out_dir: Path,
    stem: str,
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    fmt: str = "zip",
    header: bytes = b"",
    split: int | None = None,
    advance: Callable[[int], None] | None = None,
) -> StagedBundle:
    """Write the bundle as :func:`write_bundle` does, but leave it staged (see StagedBundle)."""
    if fmt not in FORMATS:
        raise RecipeError(f"unknown bundle format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if header and fmt not in ("zip", "tar"):
        raise BundleError("the self-extracting .bat bundle is a zip; it cannot be written as 7z")
    if split is not None and fmt == "tar":
        # The split reader reads zip and 7z inside parts; a tar in parts could not be verified.
        raise RecipeError("a .tar bundle cannot be split; drop --split or use --format zip")
    name = bundle_filename(stem, fmt, header)
    check_filename(name)
    check_filename(top)
    check_entries(entries)
    if split is not None:
        check_split_size(split)
        stored = sum(e.size for e in entries if is_package(e))
        if stored > split * MAX_PARTS:
            raise BundleError(
                f"{name} would need more than {MAX_PARTS} parts of {split} bytes; "
                "choose a larger split size"
            )
        check_split_folder(out_dir, name)
    tmp = _new_staging(out_dir)
    try:
        writer = PartWriter(tmp, name, split)
        try:
            if fmt == "7z":
                write_7z_stream(cast(IO[bytes], writer), top, entries, epoch, advance)
            elif fmt == "tar":
                write_tar_stream(cast(IO[bytes], writer), top, entries, epoch, header, advance)
            else:
                write_zip_stream(cast(IO[bytes], writer), top, entries, epoch, header, advance)
            writer.wait()  # the package bodies still copying in the background
        finally:
            writer.close()
        parts = writer.finish()
        extras: list[Path] = []
        if split is not None:
            info = SplitInfo(
                target=name,
                parts=len(parts),
                part_size=split,
                last_size=parts[-1].stat().st_size,
                total_size=writer.size,
            )
            extras = write_split_files(tmp, info, parts, top, fmt, bool(header))
        return StagedBundle(
            out_dir, name, tmp, [*parts, *extras], len(parts) if split is not None else 0
        )
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_failed(exc, out_dir / name) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _new_staging(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_dead_staging(out_dir)
        return Path(tempfile.mkdtemp(prefix=f".envpack-{os.getpid()}-", suffix=".tmp", dir=out_dir))
    except OSError as exc:
        raise BundleError(f"cannot write to {out_dir}: {exc.strerror}") from None


def _write_failed(exc: OSError, path: Path) -> BundleError:
    if exc.errno == errno.ENOSPC:
        return BundleError(f"disk full while writing {path}; free some space")
    return BundleError(f"cannot write {path}: {exc.strerror}")


def stage_sfx_from_zip(
    zip_path: Path,
    out_dir: Path,
    stem: str,
    header: bytes,
    advance: Callable[[int], None] | None = None,
) -> StagedBundle:
    """Stage ``<stem>.bat``: ``header`` and then the finished zip at ``zip_path`` (written by
    :func:`stage_bundle`, still staged or not) with its offsets moved by the header's length.

    The bytes are those ``stage_bundle(..., header=header)`` writes from the same entries, made
    without reading a member: the members are copied by the kernel and only the central
    directory is written again (:mod:`.sfxcopy`). For a split bundle, write the .bat in full.
    """
    name = bundle_filename(stem, "zip", header)
    check_filename(name)
    tmp = _new_staging(out_dir)
    try:
        target = tmp / name
        with open(target, "wb") as dst:
            # The members are copied as they are and their offsets only grow: never shorter.
            reserve(dst.fileno(), 0, len(header) + zip_path.stat().st_size)
            write_sfx_from_zip(zip_path, dst, header, advance)
        return StagedBundle(out_dir, name, tmp, [target], 0)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_failed(exc, out_dir / name) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
