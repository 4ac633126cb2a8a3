"""The seeded fault plan of a chaos run: which faults, in which order, and the random choices inside them
(which TaskManager, which ZooKeeper servers, how long an outage lasts). The same seed gives the same plan,
so a failing run is repeated by its printed seed. Pure code."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

LEADER_SIGKILL = "leader-sigkill"
LEADER_SIGTERM = "leader-sigterm"
LEADER_SIGSTOP = "leader-sigstop"
LEADER_PARTITION = "leader-zookeeper-partition"
TASKMANAGER_SIGKILL = "taskmanager-sigkill"
ZOOKEEPER_ONE_NODE = "zookeeper-one-node"
ZOOKEEPER_QUORUM = "zookeeper-quorum"
STORAGE_OUTAGE = "storage-outage"
CLUSTER_RESTART = "cluster-restart"
ZOOKEEPER_VANDAL = "zookeeper-vandal"
STORAGE_BLIP_AT_FAILOVER = "storage-blip-at-failover"

KINDS = (LEADER_SIGKILL, LEADER_SIGTERM, LEADER_SIGSTOP, LEADER_PARTITION, TASKMANAGER_SIGKILL, ZOOKEEPER_ONE_NODE,
         ZOOKEEPER_QUORUM, STORAGE_OUTAGE, CLUSTER_RESTART, ZOOKEEPER_VANDAL, STORAGE_BLIP_AT_FAILOVER)

# What a stranger's ZooKeeper client does (`pick` chooses): the last two are followed by a leader SIGKILL, as
# the damage only matters to the next leader.
VANDAL_ACTS = ("delete the leader's latch node", "delete the latch folder", "delete the job-graph node",
               "garble the latest checkpoint pointer")
# What happens to the latest completed-checkpoint handle just before the leader is SIGKILLed (`pick` chooses):
# gone or truncated for good, or the whole HA storage dir unreachable for the outage.
BLIP_ACTS = ("delete the latest handle file", "truncate the latest handle file", "make the HA storage dir unreachable")
ACTS = {ZOOKEEPER_VANDAL: VANDAL_ACTS, STORAGE_BLIP_AT_FAILOVER: BLIP_ACTS}


@dataclass(frozen=True)
class Fault:
    kind: str
    pick: int  # which TaskManager (of the busy ones) or ZooKeeper server: an index taken modulo the choices
    delay_s: float  # the time the job runs undisturbed before the fault
    outage_s: float  # how long a storage outage, or a quorum loss, lasts

    @property
    def act(self) -> str:
        """What exactly a vandal or a storage blip does this time."""
        acts = ACTS.get(self.kind)
        return acts[self.pick % len(acts)] if acts else ""

    def describe(self) -> str:
        outage = self.kind in (STORAGE_OUTAGE, ZOOKEEPER_QUORUM) or self.act == BLIP_ACTS[2]
        extra = (f": {self.act}" if self.act else "") + (f", outage {self.outage_s:.1f} s" if outage else "")
        return f"{self.kind} (after {self.delay_s:.1f} s, pick {self.pick}{extra})"


def plan(seed: int, counts: dict[str, int]) -> list[Fault]:
    """`counts[kind]` faults of each kind, in an order shuffled by `seed`."""
    rng = random.Random(seed)
    kinds = [kind for kind in KINDS for _ in range(counts.get(kind, 0))]
    unknown = set(counts) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    rng.shuffle(kinds)
    faults = [Fault(kind, rng.randrange(1000), round(rng.uniform(0.3, 1.5), 2), round(rng.uniform(1.0, 4.0), 1))
              for kind in kinds]
    # A kind with several acts does each in turn (from a seeded first one), so a long run does them all.
    first = {kind: rng.randrange(len(acts)) for kind, acts in ACTS.items()}
    seen: dict[str, int] = {}
    for index, fault in enumerate(faults):
        if fault.kind in ACTS:
            n = len(ACTS[fault.kind])
            turn = (first[fault.kind] + seen.setdefault(fault.kind, 0)) % n
            seen[fault.kind] += 1
            faults[index] = dataclasses.replace(fault, pick=fault.pick - fault.pick % n + turn)
    return faults
