"""`jobmanager.memory.process.size` / `taskmanager.memory.process.size` as a daemon's memory limit.

Flink sizes a JVM's pools from it; a Python daemon has no pools to size, so the key is honoured as what it
means to an operator: the most memory the process may take. The daemon's resident memory is checked every
second; over the limit, the daemon says so in its log (the key, the limit, what it uses) and stops as on
SIGTERM, so its tasks fail over to other TaskManagers (a standby JobManager takes over): what a container's
memory limit would do, with the reason named instead of a silent OOM kill. Flink's other memory keys size
JVM pools and are not read (the configuration names them at start as unknown)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from ha_flink.config import Configuration, JobManagerOptions, TaskManagerOptions
from ha_flink.config.options import ConfigOption

logger = logging.getLogger(__name__)

CHECK_INTERVAL_S = 1.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class MemoryLimit:
    key: str
    limit_bytes: int

    def exceeded_by(self, resident_bytes: int) -> bool:
        return resident_bytes > self.limit_bytes

    def message(self, resident_bytes: int) -> str:
        return (f"{self.key} is {_mib(self.limit_bytes)}, but this process holds {_mib(resident_bytes)} of resident "
                f"memory: stopping it (its work fails over), as a memory limit does; raise {self.key} or give "
                "the job less state on the heap (state.backend.type: rocksdb keeps state off it)")


def _mib(size: int) -> str:
    return f"{size / 2 ** 20:.0f} MiB"


def memory_limit(config: Configuration, daemon: str) -> MemoryLimit | None:
    """The limit of `daemon` (standalonesession or taskexecutor), or None when its key is not set."""
    option: ConfigOption[int] = JobManagerOptions.PROCESS_MEMORY if daemon == "standalonesession" \
        else TaskManagerOptions.PROCESS_MEMORY
    size = config.get(option)
    return MemoryLimit(option.key, int(size)) if size is not None else None


def resident_bytes() -> int:
    """This process's resident set size (Linux /proc/self/statm)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE


async def watch(limit: MemoryLimit, stop: asyncio.Event) -> bool:
    """Check every second until `stop` is set; returns True when the limit was exceeded (and sets `stop`)."""
    while not stop.is_set():
        used = resident_bytes()
        if limit.exceeded_by(used):
            logger.error("%s", limit.message(used))
            stop.set()
            return True
        try:
            await asyncio.wait_for(stop.wait(), CHECK_INTERVAL_S)
        except asyncio.TimeoutError:
            pass
    return False
