"""`assign_timestamps_and_watermarks` (and the watermark strategy of `from_source`): stamps each record
with its event time and emits watermarks behind them.

A watermark goes out after each batch when it advanced, rather than every 200 ms as Flink's
`pipeline.auto-watermark-interval`: a batch is already the unit of work, and a later watermark only
delays results. With `with_idleness(timeout)`, a subtask that saw no record for `timeout` declares itself
idle, so downstream operators leave it out of their minimum; its next record makes it active again."""

from __future__ import annotations

from typing import Any

from ha_flink.runtime.operators.base import MAX_WATERMARK, MIN_WATERMARK, StreamOperator


class TimestampsAndWatermarksOperator(StreamOperator):
    def __init__(self, strategy: Any, name: str = "Timestamps/Watermarks") -> None:
        self.strategy = strategy
        self.name = name

    def open(self) -> None:
        strategy = self.strategy
        self.generator = strategy.create_watermark_generator()
        assigner = strategy.get_timestamp_assigner()
        if assigner is not None and not hasattr(assigner, "extract_timestamp"):
            if not callable(assigner):
                raise TypeError(f"{self.name}: the timestamp assigner {assigner!r} has no extract_timestamp()")
            function = assigner
            assigner = type("_CallableAssigner", (), {"extract_timestamp": staticmethod(function)})()
        self.extract = assigner.extract_timestamp if assigner is not None else None
        self.emitted = MIN_WATERMARK
        # BATCH: no watermarks; event time ends at the end of input, where everything fires (as in Flink).
        self.batch = self.context.runtime_mode == "BATCH"
        self.idle = False
        timeout = strategy.idle_timeout
        self.idle_ms = timeout.to_milliseconds() if timeout is not None else None
        if self.idle_ms is not None and not self.batch:
            if self.idle_ms <= 0:
                raise ValueError(f"{self.name}: with_idleness needs a positive timeout, got {timeout}")
            self.last_record_ms = self.context.processing_time.now_ms()
            self._schedule_idle_check()

    def _schedule_idle_check(self) -> None:
        idle_ms = self.idle_ms
        assert idle_ms is not None  # (idle checks run only with an idle timeout)
        clock = self.context.processing_time
        clock.register(clock.now_ms() + max(1, idle_ms // 2), self._check_idle)

    def _check_idle(self, _timestamp: int) -> None:
        idle_ms = self.idle_ms
        assert idle_ms is not None  # (idle checks run only with an idle timeout)
        if not self.idle and self.context.processing_time.now_ms() - self.last_record_ms >= idle_ms:
            self.idle = True
            self.output.emit_watermark_status(True)
        self._schedule_idle_check()

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        if not batch:
            return
        if self.idle_ms is not None and not self.batch:
            self.last_record_ms = self.context.processing_time.now_ms()
            if self.idle:
                self.idle = False
                self.output.emit_watermark_status(False)
        extract = self.extract
        if extract is not None:
            if timestamps is None:
                timestamps = [extract(value, MIN_WATERMARK) for value in batch]
            else:
                timestamps = [extract(value, timestamp) for value, timestamp in zip(batch, timestamps)]
            if any(type(timestamp) is not int for timestamp in timestamps):
                timestamps = [self._as_int(value, t) for value, t in zip(batch, timestamps)]
        if timestamps is not None:
            self.generator.on_event(max(timestamps))
        self.output.collect_batch(batch, timestamps)
        if self.batch:
            return
        watermark = self.generator.current_watermark()
        if watermark > self.emitted:
            self.emitted = watermark
            self.output.emit_watermark(watermark)

    def _as_int(self, value: Any, timestamp: Any) -> int:
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
            raise TypeError(f"{self.name}: extract_timestamp returned {timestamp!r} for {value!r}; a timestamp "
                            "is an int of epoch milliseconds")
        return int(timestamp)

    def process_watermark(self, watermark: int) -> None:
        # Upstream watermarks are replaced by ours, as in Flink; only the end of event time passes.
        if watermark == MAX_WATERMARK:
            super().process_watermark(watermark)

    def process_watermark_status(self, idle: bool) -> None:
        pass  # upstream idleness says nothing about the event time this operator makes (as Flink)
