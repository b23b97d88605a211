"""envpack: pack a locked conda environment into an offline installer bundle."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
