"""Lock: the package record, the lock file and the importers of other lock formats."""
