"""Bundle layout: what goes into a bundle (entries, stubs, manifest, SBOM), before any container."""
