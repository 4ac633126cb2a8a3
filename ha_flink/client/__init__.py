"""Talking to a running cluster: find the leading Dispatcher (ZooKeeper, or an address given with -m),
submit job graphs, list, inspect and cancel jobs."""
