"""ZooKeeper high availability: leader election and retrieval, fenced writes, the state handle store and
the stores on it (job graphs, completed checkpoints, checkpoint ids), the job result store, cleanup.
See ARCHITECTURE.md, "ZooKeeper layout" and "Lifecycle of HA data"."""
