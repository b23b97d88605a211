"""PyPI wheels in the bundle: the ``pip:`` list read as pip reads it, resolved for the target with
uv, locked as :class:`WheelRecord` s, fetched with envpack's fetcher, installed offline by the
environment's own pip (``stubs/pip-step.bat``)."""

from envpack.lock.wheel import WheelRecord, public_url, wheels_txt

from .requirements import PipInput, parse_pip_list
from .resolve import Resolution, resolve
from .target import Target, python_version_of

__all__ = [
    "PipInput",
    "Resolution",
    "Target",
    "WheelRecord",
    "parse_pip_list",
    "public_url",
    "python_version_of",
    "resolve",
    "wheels_txt",
]
