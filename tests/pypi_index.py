"""Minimal valid wheels and sdists written with zipfile/tarfile, and a PEP 503 index serving them
on 127.0.0.1 (optionally behind HTTP basic auth, recording what each request carried)."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name

_EPOCH = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Dist:
    """One wheel to generate: ``tag`` is the wheel's ``python-abi-platform`` triple."""

    name: str
    version: str
    tag: str = "py3-none-any"
    requires: tuple[str, ...] = ()
    requires_python: str | None = None

    @property
    def filename(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-{self.tag}.whl"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_bytes(dist: Dist) -> bytes:
    """A wheel pip and uv accept: a module, METADATA, WHEEL and RECORD, fixed timestamps."""
    module = dist.name.replace("-", "_")
    info = f"{module}-{dist.version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {dist.name}", f"Version: {dist.version}"]
    if dist.requires_python:
        meta.append(f"Requires-Python: {dist.requires_python}")
    meta += [f"Requires-Dist: {r}" for r in dist.requires]
    pure = "true" if dist.tag.endswith("none-any") else "false"
    files = {
        f"{module}/__init__.py": f"VERSION = {dist.version!r}\n".encode(),
        f"{info}/METADATA": ("\n".join(meta) + "\n").encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: envpack-tests\nRoot-Is-Purelib: {pure}\n"
            f"Tag: {dist.tag}\n"
        ).encode(),
    }
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(zipfile.ZipInfo(path, _EPOCH), data)
    return buf.getvalue()


_BACKEND = """\
# A PEP 517 backend in the project itself (no build requirements, so no index is needed).
import os, zipfile

NAME, VERSION, TAG = {name!r}, {version!r}, {tag!r}


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    module = NAME.replace("-", "_")
    info = f"{{module}}-{{VERSION}}.dist-info"
    fn = f"{{module}}-{{VERSION}}-{{TAG}}.whl"
    files = {{
        f"{{module}}/__init__.py": "",
        f"{{info}}/METADATA": f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n",
        f"{{info}}/WHEEL": f"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: {{TAG}}\\n",
    }}
    files[f"{{info}}/RECORD"] = "".join(f"{{p}},,\\n" for p in files) + f"{{info}}/RECORD,,\\n"
    with zipfile.ZipFile(os.path.join(wheel_directory, fn), "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return fn
"""


def backend_project(root: Path, name: str, version: str, *, compiled: bool = False) -> Path:
    """A source tree whose in-tree backend builds a pure wheel, or (``compiled``) one tagged for
    the build machine, as a C extension would be."""
    tag = "cp311-cp311-linux_x86_64" if compiled else "py3-none-any"
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
        '[build-system]\nrequires = []\nbuild-backend = "tinybackend"\nbackend-path = ["."]\n'
    )
    (root / "tinybackend.py").write_text(_BACKEND.format(name=name, version=version, tag=tag))
    return root


def sdist_bytes(name: str, version: str, *, compiled: bool = False) -> bytes:
    """``name-version.tar.gz`` of :func:`backend_project` (with PKG-INFO, as an sdist has)."""
    import tempfile

    base = f"{name.replace('-', '_')}-{version}"
    with tempfile.TemporaryDirectory() as tmp:
        project = backend_project(Path(tmp) / base, name, version, compiled=compiled)
        (project / "PKG-INFO").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for path in sorted(project.iterdir()):
                data = path.read_bytes()
                ti = tarfile.TarInfo(f"{base}/{path.name}")
                ti.size = len(data)
                ti.mtime = 1577836800
                tar.addfile(ti, io.BytesIO(data))
        return buf.getvalue()


def write_index(root: Path, dists: list[Dist], sdists: dict[str, bytes] | None = None) -> Path:
    """``root/files/*`` and ``root/simple/<project>/index.html`` (PEP 503, with
    ``data-requires-python`` and ``#sha256=`` fragments)."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    projects: dict[str, list[tuple[str, str, str | None]]] = {}
    for dist in dists:
        data = wheel_bytes(dist)
        (files / dist.filename).write_bytes(data)
        projects.setdefault(str(canonicalize_name(dist.name)), []).append(
            (dist.filename, hashlib.sha256(data).hexdigest(), dist.requires_python)
        )
    for filename, data in (sdists or {}).items():
        (files / filename).write_bytes(data)
        project = str(canonicalize_name(filename.rsplit("-", 1)[0]))
        projects.setdefault(project, []).append((filename, hashlib.sha256(data).hexdigest(), None))
    simple = root / "simple"
    simple.mkdir(exist_ok=True)
    top = []
    for project, entries in sorted(projects.items()):
        (simple / project).mkdir(exist_ok=True)
        links = []
        for filename, sha, requires in entries:
            attr = f' data-requires-python="{html.escape(requires)}"' if requires else ""
            links.append(f'<a href="../../files/{filename}#sha256={sha}"{attr}>{filename}</a><br>')
        (simple / project / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        )
        top.append(f'<a href="{project}/">{project}</a><br>')
    (simple / "index.html").write_text("<html><body>\n" + "\n".join(top) + "\n</body></html>\n")
    return root


@dataclass
class _State:
    auth: str | None = None  # "user:password" every request must carry, when set
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)


class _Handler(SimpleHTTPRequestHandler):
    state: _State

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        header = self.headers.get("Authorization")
        self.state.requests.append((self.path, header))
        if self.state.auth is not None:
            expected = "Basic " + base64.b64encode(self.state.auth.encode()).decode()
            if header != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        super().do_GET()


class IndexServer:
    """Serves ``root`` on 127.0.0.1: ``url`` + ``/simple`` is the index."""

    def __init__(self, root: Path, auth: str | None = None) -> None:
        self.state = _State(auth=auth)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> IndexServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def standard_dists() -> list[Dist]:
    """The issue's set: ``alpha`` as py3-none-any (older), cp39 win_amd64 and manylinux (the
    same newer version), a chain alpha -> beta -> gamma, and a newest alpha needing Python 3.10."""
    return [
        Dist("alpha", "1.0", requires=("beta>=1",)),
        Dist("alpha", "1.1", "cp39-cp39-win_amd64", requires=("beta>=1",)),
        Dist(
            "alpha",
            "1.1",
            "cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64",
            requires=("beta>=1",),
        ),
        Dist("alpha", "1.1", "cp310-cp310-win_amd64", requires=("beta>=1",)),
        Dist("alpha", "2.0", "py3-none-any", requires=("beta>=1",), requires_python=">=3.10"),
        Dist("beta", "1.0", requires=("gamma",)),
        Dist("beta", "1.2", requires=("gamma",)),
        Dist("gamma", "0.5"),
        Dist("gamma", "0.6", "cp39-cp39-manylinux_2_17_x86_64"),
    ]
