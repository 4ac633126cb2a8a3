"""The exchange between two subtasks of one TaskManager: the producer's thread puts each batch straight
into the consumer's input gate, as Flink's LocalInputChannel reads a local subpartition without the
network stack. Nothing is pickled and no event loop is involved; a full gate blocks the producer, which is
the back-pressure (the gate is bounded as a subpartition is).

Producer and consumer are deployed independently, in any order: the consumer registers its gate's
channel under the subpartition it reads, the producer looks it up at its first send and waits for it
meanwhile. Registrations are per leader session, so a task of a deposed leader never finds a gate of
the new leader's tasks (their partition ids may be the same)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from ha_flink.runtime.task.channels import POLL_SECONDS, BackPressureClock, InputGate, TaskCancelled

LocalChannelKey = tuple[uuid.UUID, str, int]  # (leader session, partition id, subpartition)


class LocalGates:
    """The input-gate channels of this TaskManager's consumers, by the subpartition each reads."""

    def __init__(self) -> None:
        self._gates: dict[LocalChannelKey, tuple[InputGate, int]] = {}
        self._changed = threading.Condition()

    def register(self, key: LocalChannelKey, gate: InputGate, channel_index: int) -> None:
        with self._changed:
            self._gates[key] = (gate, channel_index)
            self._changed.notify_all()

    def unregister(self, key: LocalChannelKey, gate: InputGate) -> None:
        """Drop `key` if it is still `gate`'s (a newer consumer may have taken it over)."""
        with self._changed:
            if key in self._gates and self._gates[key][0] is gate:
                del self._gates[key]

    def wait_for(self, key: LocalChannelKey, cancelled: threading.Event) -> tuple[InputGate, int]:
        """The gate channel registered under `key`; waits for it until `cancelled` (TaskCancelled)."""
        with self._changed:
            while key not in self._gates:
                if cancelled.is_set():
                    raise TaskCancelled()
                self._changed.wait(POLL_SECONDS)
            return self._gates[key]


class LocalOutputChannel:
    """The `send` side of one subpartition whose consumer runs in this TaskManager (like `LocalChannel`,
    but found at the first send and waiting on the producer's own cancellation, not the consumer's)."""

    def __init__(self, gates: LocalGates, key: LocalChannelKey, cancelled: threading.Event) -> None:
        self.gates = gates
        self.key = key
        self.cancelled = cancelled
        self.gate: InputGate | None = None
        self.channel_index = -1

    def send(self, item: Any, clock: BackPressureClock | None = None) -> None:
        if self.gate is None:
            self.gate, self.channel_index = self.gates.wait_for(self.key, self.cancelled)
        self.gate.put(self.channel_index, item, clock, self.cancelled)
