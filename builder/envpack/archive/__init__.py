"""Archive: the containers a bundle is written to (zip, 7z, tar, split parts) and read back from."""
