"""`StreamExecutionEnvironment`, shaped like PyFlink's: the entry point of a job script.

`execute()` turns what was declared since the previous `execute()` into a JobGraph and runs it: in this
process (PyFlink's local mini cluster) when the script was started with `python job.py`."""

from __future__ import annotations

import enum
import logging
import threading
from typing import TYPE_CHECKING, Any, Iterable

from ha_flink.datastream.connectors.base import Boundedness, CollectionSource, Source, SourceReader
from ha_flink.datastream.data_stream import DataStream
from ha_flink.core.functions import SourceContext, SourceFunction
from ha_flink.runtime.graph.job_graph import JobGraph, build_job_graph
from ha_flink.runtime.graph.transformations import SourceTransformation, Transformation
from ha_flink.runtime.partitioner import DEFAULT_MAX_PARALLELISM


if TYPE_CHECKING:
    from ha_flink.runtime.minicluster import JobExecutionResult, LocalJobClient

logger = logging.getLogger(__name__)


class CheckpointingMode(enum.Enum):
    EXACTLY_ONCE = 0
    AT_LEAST_ONCE = 1


class RuntimeExecutionMode(enum.Enum):
    STREAMING = 0
    BATCH = 1
    AUTOMATIC = 2


class JobClient:
    """What `execute_async` returns: the running job's id, status, and a way to cancel or wait for it."""

    def __init__(self, job: LocalJobClient) -> None:
        self._job = job

    @property
    def mini_cluster(self) -> Any:
        """The local mini cluster the job runs on (its JobMaster, TaskExecutors and tasks)."""
        return self._job.cluster

    def get_job_id(self) -> str:
        return self._job.job_id

    def get_job_status(self) -> str:
        return self._job.status()

    def cancel(self) -> None:
        self._job.cancel()

    def get_job_execution_result(self, timeout: float | None = None) -> JobExecutionResult:
        return self._job.wait(timeout)


class StreamExecutionEnvironment:
    def __init__(self, configuration: Any = None) -> None:
        self._configuration = configuration
        self._parallelism = 1
        self._max_parallelism = DEFAULT_MAX_PARALLELISM
        self._runtime_mode = RuntimeExecutionMode.STREAMING
        self._sinks: list[Transformation] = []
        self._checkpoint_interval_ms: int | None = None
        self._job_parameters: dict[str, str] = {}

    @staticmethod
    def get_execution_environment(configuration: Any = None) -> StreamExecutionEnvironment:
        return StreamExecutionEnvironment(configuration)

    # -- settings -------------------------------------------------------------------------------------

    def set_parallelism(self, parallelism: int) -> StreamExecutionEnvironment:
        if parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {parallelism}")
        self._parallelism = parallelism
        return self

    def get_parallelism(self) -> int:
        return self._parallelism

    def set_max_parallelism(self, max_parallelism: int) -> StreamExecutionEnvironment:
        if not 0 < max_parallelism <= 32768:
            raise ValueError(f"max parallelism must be in 1..32768, got {max_parallelism}")
        self._max_parallelism = max_parallelism
        return self

    def get_max_parallelism(self) -> int:
        return self._max_parallelism

    def set_runtime_mode(self, execution_mode: RuntimeExecutionMode) -> StreamExecutionEnvironment:
        self._runtime_mode = execution_mode
        return self

    def enable_checkpointing(self, interval: int, mode: CheckpointingMode | None = None) -> StreamExecutionEnvironment:
        self._checkpoint_interval_ms = interval
        if mode is not None:
            self._checkpointing_mode = mode
        return self

    def set_global_job_parameters(self, parameters: dict[str, str]) -> StreamExecutionEnvironment:
        self._job_parameters.update({str(k): str(v) for k, v in parameters.items()})
        return self

    # -- sources --------------------------------------------------------------------------------------

    def _source(self, source: Source, name: str, type_info: Any = None) -> DataStream:
        return DataStream(self, SourceTransformation(f"Source: {name}", output_type=type_info, source=source))

    def from_collection(self, collection: Iterable[Any], type_info: Any = None) -> DataStream:
        elements = list(collection)
        if getattr(type_info, "needs_conversion", False):
            elements = [type_info.conform(element) for element in elements]
        return self._source(CollectionSource(elements), "Collection Source", type_info)

    def from_source(self, source: Source, watermark_strategy: Any, source_name: str,
                    type_info: Any = None) -> DataStream:
        stream = self._source(source, source_name, type_info)
        if getattr(type_info, "needs_conversion", False):
            stream = stream.map(lambda value: value, output_type=type_info)
        if watermark_strategy is not None and not _is_no_watermarks(watermark_strategy):
            stream = stream.assign_timestamps_and_watermarks(watermark_strategy)
        return stream

    def add_source(self, source_func: SourceFunction, source_name: str = "Custom Source",
                   type_info: Any = None) -> DataStream:
        return self._source(_SourceFunctionSource(source_func), source_name, type_info)

    def read_text_file(self, file_path: str, charset_name: str = "UTF-8") -> DataStream:
        from ha_flink.datastream.connectors.file_system import FileSource, StreamFormat

        return self._source(FileSource(StreamFormat(charset_name), (file_path,)), file_path)

    # -- execution ------------------------------------------------------------------------------------

    def _add_sink(self, transformation: Transformation) -> None:
        self._sinks.append(transformation)

    def get_job_graph(self, job_name: str | None = None) -> JobGraph:
        runtime_mode = self._resolved_runtime_mode()
        interval = self._checkpoint_interval_ms
        if runtime_mode == "BATCH" and interval is not None:
            logger.info("Checkpointing is not supported and not needed when executing jobs in BATCH mode; "
                        "disabling it")
            interval = None
        return build_job_graph(
            self._sinks, job_name=job_name or "Flink Streaming Job", default_parallelism=self._parallelism,
            default_max_parallelism=self._max_parallelism, runtime_mode=runtime_mode,
            config=self._job_parameters, checkpoint_interval_ms=interval,
            settings=self._settings(),
        )

    def _resolved_runtime_mode(self) -> str:
        """STREAMING or BATCH. AUTOMATIC is BATCH when every source is bounded; BATCH with an unbounded
        source is refused, as in Flink."""
        unbounded = sorted({t.name for t in _sources(self._sinks)
                            if t.source.get_boundedness() != Boundedness.BOUNDED})
        mode = self._runtime_mode
        if mode == RuntimeExecutionMode.AUTOMATIC:
            return "STREAMING" if unbounded else "BATCH"
        if mode == RuntimeExecutionMode.BATCH and unbounded:
            raise ValueError(f"Detected an UNBOUNDED source ({', '.join(unbounded)}) with the 'execution.runtime-mode' "
                             "set to 'BATCH'. This combination is not allowed, please set the "
                             "'execution.runtime-mode' to STREAMING or AUTOMATIC")
        return mode.name

    def _settings(self) -> dict[str, str]:
        """The job's own Flink settings: what `get_execution_environment(configuration)` was given."""
        configuration = self._configuration
        settings: dict[str, str] = {}
        if getattr(self, "_checkpointing_mode", None) is not None:
            settings["execution.checkpointing.mode"] = self._checkpointing_mode.name
        if configuration is None:
            return settings
        items = configuration.to_dict().items() if hasattr(configuration, "to_dict") else dict(configuration).items()
        return {**{str(k): str(v) for k, v in items}, **settings}

    def get_execution_plan(self) -> str:
        return self.get_job_graph().describe()

    def _take_job_graph(self, job_name: str | None) -> JobGraph:
        graph = self.get_job_graph(job_name)
        self._sinks = []  # the next execute() runs only what is declared after this one
        return graph

    def execute(self, job_name: str | None = None) -> JobExecutionResult:
        from ha_flink.client import submission

        context = submission.current()
        if context is not None:  # started by `flink run`: the cluster runs it
            if context.parallelism is not None and self._parallelism == 1:
                self._parallelism = context.parallelism
            return submission.submit(self._take_job_graph(job_name))
        # (imported on use: the mini cluster and REST pull in gRPC and FastAPI, which `flink run` never needs here)
        from ha_flink.rest.server import start_rest_endpoint
        from ha_flink.runtime.minicluster import execute_locally

        return execute_locally(self._take_job_graph(job_name), start_rest_endpoint)

    def execute_async(self, job_name: str | None = None) -> JobClient:
        from ha_flink.rest.server import start_rest_endpoint
        from ha_flink.runtime.minicluster import LocalJobClient

        return JobClient(LocalJobClient(self._take_job_graph(job_name), start_rest_endpoint))


def _sources(sinks: list[Transformation]) -> list[SourceTransformation]:
    seen: set[int] = set()
    found: list[SourceTransformation] = []
    pending = list(sinks)
    while pending:
        t = pending.pop()
        if t.id in seen:
            continue
        seen.add(t.id)
        if isinstance(t, SourceTransformation):
            found.append(t)
        pending.extend(t.inputs)
    return found


def _is_no_watermarks(strategy: Any) -> bool:
    """`WatermarkStrategy.no_watermarks()` without a timestamp assigner or idleness: nothing to do."""
    return getattr(strategy, "_out_of_orderness_ms", 0) is None and strategy.get_timestamp_assigner() is None \
        and getattr(strategy, "idle_timeout", None) is None


class _SourceFunctionSource(Source):
    """A Python SourceFunction as a (non-parallel) source: `run(ctx)` runs on a thread of its own and
    hands records over through a bounded queue, so it is back-pressured like any source."""

    name = "Custom Source"
    max_parallelism = 1

    def __init__(self, function: SourceFunction) -> None:
        self.function = function

    def get_boundedness(self) -> str:
        return Boundedness.CONTINUOUS_UNBOUNDED

    def create_splits(self, parallelism: int) -> list[Any]:
        return [None]

    def create_reader(self, splits: list[Any]) -> SourceReader:
        return _SourceFunctionReader(self.function)


class _SourceFunctionReader(SourceReader, SourceContext):
    def __init__(self, function: SourceFunction) -> None:
        import queue

        self.function = function
        self.queue: Any = queue.Queue(maxsize=16)
        self.pending: list[Any] = []
        self.closed = threading.Event()
        self.error: BaseException | None = None
        if hasattr(function, "open"):
            function.open(None)  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self._run, name="source-function", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.function.run(self)
            self._flush()
        except BaseException as exc:  # handed to the task thread, which fails the job with it
            self.error = exc
        finally:
            self._put(None)

    def collect(self, value: Any) -> None:
        self.pending.append(value)
        if len(self.pending) >= 256:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self._put(batch)

    def _put(self, item: Any) -> None:
        import queue

        while not self.closed.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def poll_batch(self) -> list[Any] | None:
        import queue

        try:
            item = self.queue.get(timeout=0.05)
        except queue.Empty:
            self._flush_if_idle()
            return []
        if item is None:
            if self.error is not None:
                raise self.error
            return None
        return item

    def _flush_if_idle(self) -> None:
        # A slow source's few records must not wait for a full batch; the source thread owns `pending`,
        # so it is only flushed here when that thread is done.
        if not self.thread.is_alive():
            self._flush()

    def close(self) -> None:
        self.closed.set()
        self.function.cancel()
