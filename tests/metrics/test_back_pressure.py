"""Back-pressured time: a producer blocked on a full gate counts as back-pressured while it waits (not
only once the wait ends), and the time stops when the consumer makes room."""

from __future__ import annotations

import threading

from ha_flink.runtime.partitioner import ForwardPartitioner
from ha_flink.runtime.task.channels import InputGate, LocalChannel, RecordWriter
from ha_flink.testing.processes import wait_for


def test_a_blocked_producer_is_back_pressured_while_it_waits() -> None:
    cancelled = threading.Event()
    gate = InputGate(1, capacity=1, cancelled=cancelled)
    writer = RecordWriter(ForwardPartitioner, [LocalChannel(gate, 0)], 0)
    writer.open()
    writer.emit([1])  # fills the gate
    assert writer.clock.seconds() == 0.0 and writer.records_out == 1
    producer = threading.Thread(target=writer.emit, args=([2, 3],))
    producer.start()
    try:
        wait_for(lambda: writer.clock.seconds() > 0.2, 5, 0.01, what="the blocked wait to count")
        assert producer.is_alive()  # still blocked: counted while in progress
    finally:
        assert gate.get(timeout=1) == (0, [1])  # room: the producer goes on
        producer.join(5)
    assert writer.clock.since is None and writer.clock.total > 0.2  # the wait ended: the clock stopped
    assert writer.records_out == 3
    assert gate.get(timeout=1) == (0, [2, 3])
