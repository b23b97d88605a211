"""PyPI wheels in the bundle: the ``pip:`` list read as pip reads it, resolved for the target with
uv, locked as :class:`~envpack.lock.wheel.WheelRecord` s, fetched with envpack's fetcher, installed
offline by the environment's own pip (``stubs/pip-step.bat``).

Nothing is imported here: a build without wheels reaches :mod:`envpack.pypi.bundle`'s constants
through this package and must not pay for ``packaging`` and the resolver on the way (issue 18, a
warm build's start-up). Import names from their modules: ``requirements`` (``parse_pip_list``),
``resolve`` (``resolve``), ``target`` (``Target``), ``envpack.lock.wheel`` (``WheelRecord``).
"""
