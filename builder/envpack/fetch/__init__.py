"""Fetch: downloads into the package cache, resumable parts, progress."""
