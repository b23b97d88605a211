"""Update bundles: bring an installed environment from one lock to the next (issue 16).

``plan`` reads the base (OLD: a bundle, a lock, or what ``micromamba list --explicit --md5``
prints on the PC) and compares it with the target lock; ``layout`` turns the plan into the
update bundle's entries and manifest; ``stub`` renders its ``update.bat``; ``build`` fetches
the carried packages and writes the bundle with the same deterministic writers as full bundles.
"""
