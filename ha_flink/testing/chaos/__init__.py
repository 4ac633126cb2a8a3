"""The chaos suite: a cluster started by the `bin/` scripts, an exactly-once job, seeded faults (real
signals to real processes, ZooKeeper servers killed, storage taken away) and the checks that nothing was
lost or counted twice.

- `faults`: the seeded fault plan (pure).
- `logs`: daemon logs read back as process lifetimes, leader sessions and timed events (pure).
- `checker`: exactly-once output, strictly increasing checkpoint ids, one acting leader at a time,
  failover timings (pure, over what `logs` read).
- `harness`: the cluster, the faults and the run (I/O)."""
