"""A leader-election contender in a process of its own, for tests and benchmarks that kill a leader with a
real signal: `python -m ha_flink.testing.contender_process <quorum> <base-path> <session-timeout-s> <name>`.

It prints `joined <latch path>`, then `granted <session id> <unix time>` and `revoked <unix time>` lines
as they happen (flushed). SIGTERM makes it leave the election gracefully (nodes deleted at once), as a
JobManager does on SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
import time
import uuid

from kazoo.client import KazooClient

from ha_flink.ha import paths
from ha_flink.ha.leader_election import LeaderElection


_output_lock = threading.Lock()


def say(line: str) -> None:
    """One whole line per call: the grant arrives on the election's thread while main prints too."""
    with _output_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class _PrintingContender:
    def __init__(self, election: LeaderElection, address: str) -> None:
        self.election = election
        self.address = address

    def grant(self, session_id: uuid.UUID) -> None:
        say(f"granted {session_id} {time.time():.6f}")
        self.election.publish(paths.DISPATCHER, self.address, session_id)

    def revoke(self) -> None:
        say(f"revoked {time.time():.6f}")


def main(argv: list[str]) -> int:
    quorum, base_path, session_timeout, name = argv[0], argv[1], float(argv[2]), argv[3]
    client = KazooClient(hosts=quorum, timeout=session_timeout)
    client.start(timeout=15)
    election = LeaderElection(client, base_path, name=name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    election.start(_PrintingContender(election, f"{name}-address"))
    while election.latch_path is None and not stop.is_set():
        time.sleep(0.01)
    say(f"joined {election.latch_path}")
    stop.wait()
    election.close()
    client.stop()
    client.close()
    say("closed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
