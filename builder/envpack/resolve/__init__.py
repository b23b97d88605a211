"""Resolve: the recipe, channels, target platforms and the solvers that turn them into a lock."""
