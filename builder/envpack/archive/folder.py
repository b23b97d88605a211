"""An unpacked bundle: a folder read as a bundle, every file checked as it is read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from envpack.archive.base import BundleReader, unsafe_reason
from envpack.bundle.manifest import MANIFEST_NAME
from envpack.errors import BundleError, first_line


class FolderBundleReader(BundleReader):
    """An unpacked bundle: the ``<name>/`` folder itself or the folder that holds it."""

    kind = "folder"

    @classmethod
    def probe(cls, path: Path) -> bool:
        return path.is_dir()

    def __init__(self, source: Path) -> None:
        super().__init__(source)
        self.root = self._find_root(source)
        self.top = self.root.name
        self._files: dict[str, tuple[Path, int]] = {}
        self._scan()

    @staticmethod
    def _find_root(source: Path) -> Path:
        if (source / MANIFEST_NAME).is_file():
            return source.resolve()
        try:
            found = sorted(
                child
                for child in source.iterdir()
                if child.is_dir() and not child.is_symlink() and (child / MANIFEST_NAME).is_file()
            )
        except OSError as exc:
            raise BundleError(f"{source}: cannot list ({exc.strerror})") from None
        if not found:
            raise BundleError(
                f"{source}: no {MANIFEST_NAME} here or in a folder below; not a bundle"
            )
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            raise BundleError(f"{source}: holds several bundles ({names}); name one of them")
        return found[0].resolve()

    def _scan(self) -> None:
        seen: dict[str, str] = {}
        for rel, path in self._walk():
            reason = unsafe_reason(rel)
            if reason:
                self.problems.append(f"{rel}: unsafe file name ({reason})")
                continue
            try:
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    target = path.resolve()
                    if not target.is_relative_to(self.root):
                        self.problems.append(f"{rel}: a symlink pointing outside the bundle")
                        continue
                    st = target.stat()
            except (OSError, RuntimeError) as exc:
                self.problems.append(f"{rel}: cannot inspect ({first_line(exc)})")
                continue
            if stat.S_ISDIR(st.st_mode):
                self.problems.append(f"{rel}: a symlinked folder (not followed)")
                continue
            if not stat.S_ISREG(st.st_mode):
                self.problems.append(f"{rel}: not a regular file")
                continue
            folded = rel.casefold()
            if folded in seen:
                self.problems.append(
                    f"{rel}: differs only in case from {seen[folded]!r} (Windows cannot hold both)"
                )
                continue
            seen[folded] = rel
            self._files[rel] = (path, st.st_size)

    def _walk(self) -> Iterator[tuple[str, Path]]:
        # followlinks=False: a symlinked folder shows up as a name, never as a tree to descend.
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames.sort()
            base = Path(dirpath)
            entries = sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]
            for entry in entries:
                path = base / entry
                yield path.relative_to(self.root).as_posix(), path

    def names(self) -> list[str]:
        return sorted(self._files)

    def size(self, name: str) -> int:
        return self._files[name][1]

    def close(self) -> None:
        pass  # nothing is held open between reads

    def _open(self, name: str, seekable: bool) -> IO[bytes]:
        path = self._files[name][0]
        # Checked again at open time: the folder may have changed since it was listed.
        if not path.resolve().is_relative_to(self.root):
            raise BundleError(f"{name}: now points outside the bundle")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise BundleError(f"{name}: not a regular file")
        return os.fdopen(fd, "rb")
