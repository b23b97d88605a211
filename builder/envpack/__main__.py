"""``python -m envpack``: the same entry point as the console script."""

from envpack.cli import entry

entry()
