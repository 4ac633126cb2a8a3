"""The `flink` command line: run, list, cancel, stop, savepoint, info."""
