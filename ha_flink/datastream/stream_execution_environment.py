"""`StreamExecutionEnvironment`, shaped like PyFlink's: the entry point of a job script.

`execute()` turns what was declared since the previous `execute()` into a JobGraph and runs it: in this
process (PyFlink's local mini cluster) when the script was started with `python job.py`."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Iterable, Optional

from ha_flink.common.execution_config import ExecutionConfig, PipelineSettings
from ha_flink.common.job_client import JobClient as CommonJobClient
from ha_flink.common.job_execution_result import JobExecutionResult
from ha_flink.config import CheckpointingOptions
from ha_flink.config import Configuration as FlinkConfiguration
from ha_flink.datastream.checkpoint_config import CheckpointConfig, warn_unsupported
from ha_flink.datastream.checkpointing_mode import CheckpointingMode
from ha_flink.datastream.connectors.base import Boundedness, CollectionSource, Source, SourceReader
from ha_flink.datastream.data_stream import DataStream
from ha_flink.datastream.execution_mode import RuntimeExecutionMode
from ha_flink.datastream.local_logging import route_runtime_logs
from ha_flink.datastream.slot_sharing_group import SlotSharingGroup
from ha_flink.core.functions import SourceContext, SourceFunction
from ha_flink.runtime.graph.execution_plan import execution_plan_json
from ha_flink.runtime.graph.job_graph import JobGraph, build_job_graph
from ha_flink.runtime.graph.transformations import SourceTransformation, Transformation
from ha_flink.runtime.key_groups import DEFAULT_MAX_PARALLELISM

STATE_RECOVERY_PATH, SAVEPOINT_PATH = "execution.state-recovery.path", "execution.savepoint.path"
STATE_RECOVERY_IGNORE_UNCLAIMED = "execution.state-recovery.ignore-unclaimed-state"
SAVEPOINT_IGNORE_UNCLAIMED = "execution.savepoint.ignore-unclaimed-state"


if TYPE_CHECKING:
    from ha_flink.runtime.minicluster import MiniCluster

logger = logging.getLogger(__name__)


__all__ = ["CheckpointingMode", "JobClient", "RuntimeExecutionMode", "StreamExecutionEnvironment"]

CHAINING = "pipeline.operator-chaining.enabled"
BUFFER_TIMEOUT = "execution.buffer-timeout.interval"
CHANGELOG = "state.changelog.enabled"


class JobClient(CommonJobClient):
    """PyFlink's JobClient (`pyflink.common.JobClient`); for a local run also the mini cluster it runs on."""

    @property
    def mini_cluster(self) -> MiniCluster | None:
        """The local mini cluster the job runs on (its JobMaster, TaskExecutors and tasks); None on a cluster."""
        return getattr(self._job, "cluster", None)


class StreamExecutionEnvironment:
    """Settings live in one PipelineSettings that `get_config()` and `get_checkpoint_config()` share; those
    with a Flink key are kept as that key, so they reach the job as its own configuration."""

    def __init__(self, configuration: Any = None) -> None:
        self._pipeline = PipelineSettings(max_parallelism=DEFAULT_MAX_PARALLELISM)
        self._runtime_mode = RuntimeExecutionMode.STREAMING
        self._sinks: list[Transformation] = []
        self._default_local_parallelism: int | None = None
        self._slot_sharing_groups: dict[str, SlotSharingGroup] = {}
        from ha_flink.client import submission

        context = submission.current()
        if context is not None and context.dynamic_properties:  # `flink run -D ...`: before the program's own
            self.configure({key: value for key, value in context.dynamic_properties.items()
                            if not (key == "parallelism.default" and context.parallelism)})
        if configuration is not None:
            self.configure(configuration)

    @staticmethod
    def get_execution_environment(configuration: Any = None) -> StreamExecutionEnvironment:
        return StreamExecutionEnvironment(configuration)

    # -- settings -------------------------------------------------------------------------------------

    def get_config(self) -> ExecutionConfig:
        return ExecutionConfig(self._pipeline)

    def get_checkpoint_config(self) -> CheckpointConfig:
        return CheckpointConfig(self._pipeline)

    def configure(self, configuration: Any) -> StreamExecutionEnvironment:
        """Sets every key of `configuration` (a `Configuration` or a dict) as the job's own setting;
        `parallelism.default`, `pipeline.max-parallelism`, `execution.runtime-mode` and
        `pipeline.global-job-parameters` also change what the getters return."""
        items = configuration.to_dict() if hasattr(configuration, "to_dict") else dict(configuration)
        for key, value in items.items():
            key, value = str(key), str(value)
            if key == "parallelism.default":
                self.set_parallelism(int(value))
            elif key == "pipeline.max-parallelism":
                self.set_max_parallelism(int(value))
            elif key == "execution.runtime-mode":
                self.set_runtime_mode(RuntimeExecutionMode[value.upper()])
            elif key == "pipeline.global-job-parameters":
                pairs = (part.split(":", 1) for part in value.split(",") if ":" in part)
                self._pipeline.job_parameters.update({k.strip(): v.strip() for k, v in pairs})
            else:
                self._pipeline.values[key] = value
        return self

    def set_parallelism(self, parallelism: int) -> StreamExecutionEnvironment:
        if parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {parallelism}")
        self._pipeline.parallelism = parallelism
        self._pipeline.parallelism_set = True
        return self

    def register_slot_sharing_group(self, slot_sharing_group: SlotSharingGroup) -> StreamExecutionEnvironment:
        """Registers a group's resource spec. ha-flink's slots are uniform and every job shares one group
        (DataStream.slot_sharing_group), so a spec cannot be granted: a job that uses a group with
        resources is submitted with a warning naming the group."""
        self._slot_sharing_groups[slot_sharing_group.get_name()] = slot_sharing_group
        return self

    def get_parallelism(self) -> int:
        """What the job runs at: as set, else under `flink run` its `-p` (or 1), else the default local
        parallelism (the core count), as PyFlink's local environment."""
        if self._pipeline.parallelism_set:
            return self._pipeline.parallelism
        from ha_flink.client import submission

        context = submission.current()
        if context is not None:
            return context.parallelism or self._pipeline.parallelism
        return self.get_default_local_parallelism()

    def set_max_parallelism(self, max_parallelism: int) -> StreamExecutionEnvironment:
        self.get_config().set_max_parallelism(max_parallelism)
        return self

    def get_max_parallelism(self) -> int:
        return self._pipeline.max_parallelism

    def get_default_local_parallelism(self) -> int:
        """What `set_default_local_parallelism` set, else this machine's core count (as PyFlink): what a
        local run (`python job.py`) runs at when no parallelism was set."""
        import os

        return self._default_local_parallelism or os.cpu_count() or 1

    def set_default_local_parallelism(self, parallelism: int) -> StreamExecutionEnvironment:
        self._default_local_parallelism = parallelism
        return self

    def set_runtime_mode(self, execution_mode: RuntimeExecutionMode) -> StreamExecutionEnvironment:
        self._runtime_mode = execution_mode
        return self

    def set_buffer_timeout(self, timeout_millis: int) -> StreamExecutionEnvironment:
        """`execution.buffer-timeout.interval`. A producer sends each batch of output when the batch of
        input that made it is done, so records wait at most one batch, within any positive timeout; with
        -1 (Flink: only full buffers) or 0 (flush every record) batches are still sent that way."""
        if timeout_millis < -1:
            raise ValueError("Timeout of buffer must be non-negative or -1")
        self._pipeline.values[BUFFER_TIMEOUT] = f"{timeout_millis} ms" if timeout_millis >= 0 else "-1"
        return self

    def get_buffer_timeout(self) -> int:
        text = self._pipeline.values.get(BUFFER_TIMEOUT, "100 ms")
        return int(text.split()[0])

    def disable_operator_chaining(self) -> StreamExecutionEnvironment:
        """Every operator becomes a task of its own (`pipeline.operator-chaining.enabled: false`)."""
        self._pipeline.values[CHAINING] = "false"
        return self

    def is_chaining_enabled(self) -> bool:
        return self._pipeline.values.get(CHAINING, "true").lower() == "true"

    def is_chaining_of_operators_with_different_max_parallelism_enabled(self) -> bool:
        return self.is_chaining_enabled()

    def enable_checkpointing(self, interval: int, mode: CheckpointingMode | None = None) -> StreamExecutionEnvironment:
        config = self.get_checkpoint_config()
        config.set_checkpoint_interval(interval)
        if mode is not None:
            config.set_checkpointing_mode(mode)
        return self

    def get_checkpoint_interval(self) -> int:
        return self.get_checkpoint_config().get_checkpoint_interval()

    def get_checkpointing_mode(self) -> CheckpointingMode:
        return self.get_checkpoint_config().get_checkpointing_mode()

    def get_checkpointing_consistency_mode(self) -> CheckpointingMode:
        return self.get_checkpointing_mode()

    def is_unaligned_checkpoints_enabled(self) -> bool:
        return self.get_checkpoint_config().is_unaligned_checkpoints_enabled()

    def is_force_unaligned_checkpoints(self) -> bool:
        return self.get_checkpoint_config().is_force_unaligned_checkpoints()

    def enable_changelog_state_backend(self, enabled: bool) -> StreamExecutionEnvironment:
        """`state.changelog.enabled`. The changelog state backend is not implemented: turning it on is
        refused at once (the incremental RocksDB checkpoints, `execution.checkpointing.incremental`, are
        the way to small checkpoints here)."""
        if enabled:
            raise NotImplementedError("the changelog state backend (state.changelog.enabled) is not supported by "
                                      "ha-flink; use state.backend.type: rocksdb with "
                                      "execution.checkpointing.incremental: true for small checkpoints")
        self._pipeline.values[CHANGELOG] = "false"
        return self

    def is_changelog_state_backend_enabled(self) -> Optional[bool]:
        value = self._pipeline.values.get(CHANGELOG)
        return None if value is None else value.lower() == "true"

    def set_default_savepoint_directory(self, directory: str) -> StreamExecutionEnvironment:
        FlinkConfiguration({CheckpointingOptions.SAVEPOINT_DIRECTORY.key: directory})  # absolute or a URL
        self._pipeline.values[CheckpointingOptions.SAVEPOINT_DIRECTORY.key] = directory
        return self

    def get_default_savepoint_directory(self) -> Optional[str]:
        return self._pipeline.values.get(CheckpointingOptions.SAVEPOINT_DIRECTORY.key)

    def set_global_job_parameters(self, parameters: dict[str, str]) -> StreamExecutionEnvironment:
        self._pipeline.job_parameters.update({str(k): str(v) for k, v in parameters.items()})
        return self

    # -- Python dependencies (python.files, python.requirements, python.archives, python.executable) ----------

    def add_python_file(self, file_path: str) -> None:
        """Adds a Python dependency: a .py file, a package (or any) folder, or a .zip/.whl/.egg of modules
        (`python.files`). It is read when the job is submitted, shipped with the job graph and put on the
        sys.path of the job's tasks on every TaskManager (`runtime/python_env.py`). FileNotFoundError at
        once if nothing is at `file_path`."""
        from ha_flink.runtime import python_artifacts as pa

        pa.require_exists(pa.FILES, file_path)
        self._pipeline.values[pa.FILES] = pa.join_entries(file_path, self._pipeline.values.get(pa.FILES))

    def set_python_requirements(self, requirements_file_path: str, requirements_cache_dir: str | None = None) -> None:
        """The third-party packages the job's functions need, listed in a requirements file
        (`python.requirements`): each TaskManager installs them with pip into a folder on the tasks'
        sys.path (once per set of requirements). With `requirements_cache_dir` (made with `pip download -d
        cache_dir -r requirements.txt`) they are installed from its packages only, offline."""
        from ha_flink.runtime import python_artifacts as pa

        pa.require_exists(pa.REQUIREMENTS, requirements_file_path)
        value = requirements_file_path
        if requirements_cache_dir is not None:
            pa.require_exists(pa.REQUIREMENTS, requirements_cache_dir)
            value = pa.PARAM_DELIMITER.join([requirements_file_path, requirements_cache_dir])
        self._pipeline.values[pa.REQUIREMENTS] = value

    def add_python_archive(self, archive_path: str, target_dir: str | None = None) -> None:
        """A zip or tar file unpacked into the job's working folder on each TaskManager, under `target_dir`
        or the archive's own file name (`python.archives`); while the job runs there, the working directory
        is that folder, so functions open its files by relative paths (`target_dir/data.txt`), as in PyFlink."""
        from ha_flink.runtime import python_artifacts as pa

        pa.require_exists(pa.ARCHIVES, archive_path)
        entry = archive_path if target_dir is None else pa.PARAM_DELIMITER.join([archive_path, target_dir])
        self._pipeline.values[pa.ARCHIVES] = pa.join_entries(self._pipeline.values.get(pa.ARCHIVES), entry)

    def set_python_executable(self, python_exec: str) -> None:
        """`python.executable`. ha-flink runs Python functions in the TaskManager's own interpreter (tasks
        are threads of its process), so only that interpreter can be named: the same executable, or one of
        the same environment and version. Any other is refused here with a PythonDependencyError (a
        ValueError) naming the key, rather than ignored with its packages missing later; ship packages with
        `set_python_requirements`, `add_python_file` or `add_python_archive` instead."""
        from ha_flink.runtime import python_artifacts as pa

        archives = {entry.partition(pa.PARAM_DELIMITER)[2] or entry.rsplit("/", 1)[-1]
                    for entry in pa.split_entries(self._pipeline.values.get(pa.ARCHIVES))}
        pa.check_interpreter(pa.EXECUTABLE, python_exec, archives)
        self._pipeline.values[pa.EXECUTABLE] = python_exec

    def close(self) -> None:
        """Nothing stays open between executions (each local run's mini cluster is stopped with it)."""

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
        settings = self._settings()
        interval = self.get_checkpoint_interval()
        if runtime_mode == "BATCH" and interval > 0:
            logger.info("Checkpointing is not supported and not needed when executing jobs in BATCH mode; "
                        "disabling it")
            settings.pop(CheckpointingOptions.CHECKPOINTING_INTERVAL.key, None)
            interval = -1
        if not self.get_config().has_auto_generated_uids_enabled():
            missing = sorted({t.name for t in _transformations(self._sinks) if not t.is_virtual and not t.uid})
            if missing:
                raise ValueError(f"Auto generated UIDs have been disabled (ExecutionConfig."
                                 f"disable_auto_generated_uids) but no UID was set for: {', '.join(missing)}; "
                                 "give each operator one with .uid(...)")
        graph = build_job_graph(
            self._sinks, job_name=job_name or "Flink Streaming Job", default_parallelism=self._pipeline.parallelism,
            default_max_parallelism=self._pipeline.max_parallelism, runtime_mode=runtime_mode,
            config=self._pipeline.job_parameters, checkpoint_interval_ms=interval if interval > 0 else None,
            settings=settings, chaining=self.is_chaining_enabled(),
        )
        # Flink 2's keys for the state a job starts from (its 1.x names as fallbacks); `flink run -s` wins
        graph.savepoint_path = settings.get(STATE_RECOVERY_PATH) or settings.get(SAVEPOINT_PATH) or None
        ignore = settings.get(STATE_RECOVERY_IGNORE_UNCLAIMED) or settings.get(SAVEPOINT_IGNORE_UNCLAIMED) or "false"
        graph.allow_non_restored_state = ignore.strip().lower() == "true"
        return graph

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
        """The job's own Flink settings: the configuration it was given and what the API calls set."""
        return dict(self._pipeline.values)

    def get_execution_plan(self) -> str:
        """The JSON plan of what is declared so far (Flink's JSONGenerator format: `nodes` with `id`, `type`,
        `pact`, `contents`, `parallelism`, `predecessors`), which Flink's plan visualizer reads."""
        self._resolved_runtime_mode()  # (refuses BATCH with an unbounded source, as execute() would)
        return execution_plan_json(self._sinks, self.get_parallelism())

    def _take_job_graph(self, job_name: str | None) -> JobGraph:
        graph = self.get_job_graph(job_name)
        warn_unsupported(self._pipeline.values, graph.name)
        used = {t.slot_sharing_group for t in _transformations(self._sinks)}
        for name, group in sorted(self._slot_sharing_groups.items()):
            if name in used and group.has_resources():
                logger.warning("Job %s: slot sharing group %r asks for resources (cpu %s, task heap %s), which "
                               "ha-flink does not grant: its slots are uniform (taskmanager.numberOfTaskSlots), "
                               "and its operators run in the job's shared slots", graph.name, name,
                               group.get_cpu_cores(), group.get_task_heap_memory())
        self._sinks = []  # the next execute() runs only what is declared after this one
        return graph

    def execute(self, job_name: str | None = None) -> JobExecutionResult:
        from ha_flink.client import submission

        if submission.current() is not None:  # started by `flink run`: the cluster runs it
            return submission.submit(self._take_cluster_job_graph(job_name))
        # (imported on use: the mini cluster and REST pull in gRPC and FastAPI, which `flink run` never needs here)
        from ha_flink.rest.server import start_rest_endpoint
        from ha_flink.runtime.minicluster import execute_locally

        return execute_locally(self._take_local_job_graph(job_name), start_rest_endpoint)

    def execute_async(self, job_name: str | None = None) -> JobClient:
        """Starts the job and returns at once; under `flink run` the cluster runs it (and the program may end
        before the job does, as with `flink run -d`)."""
        from ha_flink.client import submission

        if submission.current() is not None:
            return JobClient(submission.submit_async(self._take_cluster_job_graph(job_name)))
        return self._execute_async_locally(job_name)

    def _execute_async_locally(self, job_name: str | None) -> JobClient:
        from ha_flink.rest.server import start_rest_endpoint
        from ha_flink.runtime.minicluster import LocalJobClient

        return JobClient(LocalJobClient(self._take_local_job_graph(job_name), start_rest_endpoint))

    def _take_cluster_job_graph(self, job_name: str | None) -> JobGraph:
        """`flink run -p` sets the parallelism of a program that set none; `flink info` records its plan."""
        from ha_flink.client import submission

        context = submission.current()
        if context is not None and context.parallelism is not None and self._pipeline.parallelism == 1:
            self._pipeline.parallelism = context.parallelism
        if context is not None and context.plans is not None:
            context.plans.append(self.get_execution_plan())
        return self._take_job_graph(job_name)

    def _take_local_job_graph(self, job_name: str | None) -> JobGraph:
        """A local run without a parallelism set (set_parallelism, parallelism.default) runs at the default
        local parallelism: `set_default_local_parallelism`'s value, else the core count, as PyFlink's."""
        if not self._pipeline.parallelism_set:
            self._pipeline.parallelism = self.get_default_local_parallelism()
        graph = self._take_job_graph(job_name)
        route_runtime_logs(FlinkConfiguration(graph.settings, source=f"job {graph.job_id}"))
        return graph


def _transformations(sinks: list[Transformation]) -> list[Transformation]:
    seen: set[int] = set()
    found: list[Transformation] = []
    pending = list(sinks)
    while pending:
        t = pending.pop()
        if t.id in seen:
            continue
        seen.add(t.id)
        found.append(t)
        pending.extend(t.inputs)
    return found


def _sources(sinks: list[Transformation]) -> list[SourceTransformation]:
    return [t for t in _transformations(sinks) if isinstance(t, SourceTransformation)]


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
