"""DataStream / KeyedStream calls as a PyFlink program makes them, each run as a real local job:
execute_and_collect (bounded, limit, early close, failure, back-pressure), force_non_parallel, rescale,
partition_custom, project, the recorded operator properties, cache, the keyed aggregations (sum, min,
max, min_by, max_by) and what PyFlink refuses on a KeyedStream, and broadcast's parameter names."""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from ha_flink.common import JobStatus, Row, Types, WatermarkStrategy
from ha_flink.datastream import (
    BroadcastConnectedStream, BroadcastStream, KeyedBroadcastProcessFunction, KeyedStream, MapFunction,
    RuntimeContext, StreamExecutionEnvironment,
)
from ha_flink.datastream.connectors.number_seq import NumberSequenceSource, RateLimitedNumberSequenceSource
from ha_flink.datastream.data_stream import CloseableIterator
from ha_flink.datastream.functions import KeySelector, Partitioner
from ha_flink.datastream.state import ListStateDescriptor, MapStateDescriptor
from ha_flink.runtime.minicluster import JobExecutionError
from ha_flink.runtime.partitioner import RescalePartitioner, rescale_targets
from ha_flink.testing.processes import wait_for
from ha_flink.testing.sinks import CollectSink, read_collected


def env_with(parallelism: int = 1) -> StreamExecutionEnvironment:
    return StreamExecutionEnvironment.get_execution_environment().set_parallelism(parallelism)


def numbers(env: StreamExecutionEnvironment, name: str, end: int | None = None,
            rate: float | None = None) -> Any:
    return env.from_source(RateLimitedNumberSequenceSource(0, end, rate), WatermarkStrategy.no_watermarks(), name)


def threads_named(part: str) -> list[str]:
    return [t.name for t in threading.enumerate() if part in t.name and t.is_alive()]


def no_threads_named(part: str) -> bool:
    """Whether the job's task threads ended. (A cancelled task is reported CANCELED at once; its thread
    ends at its next look at the cancel flag, within a poll interval: so wait a moment for it.)"""
    wait_for(lambda: not threads_named(part), 2, what=f"the task threads of {part} to end")
    return True


class KeepClient:
    """Keeps the JobClient that execute_and_collect's job runs under (it always runs locally)."""

    def __init__(self, env: StreamExecutionEnvironment) -> None:
        self.clients: list[Any] = []
        original = env._execute_async_locally

        def execute_async(job_name: str | None = None) -> Any:
            client = original(job_name)
            self.clients.append(client)
            return client

        env._execute_async_locally = execute_async  # type: ignore[method-assign]


def job_name(client: Any) -> str:
    return client.mini_cluster.job_master(client.get_job_id()).graph.name


class TagSubtask(MapFunction):
    """(subtask index, value): where each record was processed."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.index = runtime_context.get_index_of_this_subtask()

    def map(self, value: Any) -> Any:
        return (self.index, value)


# -- execute_and_collect ---------------------------------------------------------------------------------

def test_execute_and_collect_returns_every_record_of_a_bounded_stream() -> None:
    env = env_with(1)
    words = [f"w{i}" for i in range(2000)]
    with env.from_collection(words).map(str.upper).execute_and_collect() as records:
        assert isinstance(records, CloseableIterator)
        collected = list(records)
    assert collected == [w.upper() for w in words]  # one source subtask, one collect sink: input order
    assert records.job_client.get_job_status().result() == JobStatus.FINISHED
    with pytest.raises(StopIteration):
        next(records)


def test_execute_and_collect_in_parallel_and_on_a_keyed_stream() -> None:
    env = env_with(3)
    data = [(i % 7, i) for i in range(3000)]
    keep = KeepClient(env)
    with env.from_collection(data).key_by(lambda t: t[0]).sum(1).execute_and_collect("sums") as records:
        collected = list(records)
    assert len(collected) == len(data)  # every rolling update
    finals = {k: max(v for key, v in collected if key == k) for k in range(7)}
    assert finals == {k: sum(v for key, v in data if key == k) for k in range(7)}
    assert keep.clients[0].get_job_status().result() == JobStatus.FINISHED
    assert job_name(keep.clients[0]) == "sums"
    keyed = env.from_collection(list(range(100))).key_by(lambda v: v % 2)
    assert sorted(keyed.execute_and_collect()) == list(range(100))


def test_sinks_declared_before_run_in_the_collecting_job(tmp_path: Path) -> None:
    env = env_with(2)
    keep = KeepClient(env)
    env.from_collection(["a", "b", "c"]).add_sink(CollectSink(tmp_path))
    assert sorted(env.from_collection([1, 2, 3]).execute_and_collect()) == [1, 2, 3]
    assert sorted(read_collected(tmp_path)) == ["a", "b", "c"]  # one job, as Flink's executeAndCollect
    assert job_name(keep.clients[0]) == "DataStream Collect"  # (Flink's default name)


def test_execute_and_collect_with_a_limit_ends_an_unbounded_job(tmp_path: Path) -> None:
    env = env_with(1)
    keep = KeepClient(env)
    started = time.monotonic()
    first = numbers(env, "unbounded-limit").map(lambda i: i * 2).execute_and_collect(limit=25)
    assert first == [2 * i for i in range(25)]
    assert keep.clients[0].get_job_status().result() == JobStatus.CANCELED
    assert no_threads_named("unbounded-limit")  # its tasks' threads ended with it
    assert time.monotonic() - started < 20
    with pytest.raises(ValueError, match="Limit must be greater than 0"):
        env.from_collection([1]).execute_and_collect(limit=0)


def test_a_limit_above_the_records_returns_them_all() -> None:
    env = env_with(2)
    assert sorted(env.from_collection(list(range(10))).execute_and_collect(limit=100)) == list(range(10))


def test_closing_the_iterator_early_cancels_the_running_job() -> None:
    env = env_with(2)
    records = numbers(env, "closed-early").execute_and_collect()
    seen = [next(records) for _ in range(50)]
    assert len(set(seen)) == 50 and all(isinstance(v, int) for v in seen)
    assert records.job_client.get_job_status().result() == JobStatus.RUNNING
    records.close()
    assert records.job_client.get_job_status().result() == JobStatus.CANCELED
    assert no_threads_named("closed-early")
    with pytest.raises(StopIteration):
        next(records)
    records.close()  # (twice is fine)
    # Leaving a with block closes it too.
    with numbers(env, "with-block").execute_and_collect() as inside:
        assert next(inside) in (0, 1)  # (two source subtasks: 0, 2, 4 ... and 1, 3, 5 ...)
    assert inside.job_client.get_job_status().result() == JobStatus.CANCELED and no_threads_named("with-block")


def test_a_reader_that_stops_reading_back_pressures_the_job() -> None:
    env = env_with(2)  # (two source subtasks and the one collect sink: separate tasks, counted records_out)
    records = numbers(env, "back-pressured").execute_and_collect()
    try:
        head = [next(records) for _ in range(10)]
        client = records.job_client
        sources = [t for t in client.mini_cluster.tasks(client.get_job_id()) if "back-pressured" in t.display_name]
        assert len(sources) == 2

        def emitted() -> int:
            return sum(t.records_out for t in sources)

        samples: list[int] = []

        def stalled() -> bool:  # the sources emit nothing more while nobody reads
            samples.append(emitted())
            time.sleep(0.2)
            return emitted() == samples[-1]

        wait_for(stalled, 15, what="the unread queue to stop the sources")
        # Bounded by the queue and the gates (a few hundred batches of 1024), not an endless buffer.
        assert 0 < emitted() < 300_000
        rest = [next(records) for _ in range(200_000)]  # reading again lets the job go on
        assert emitted() > samples[-1]
        assert len(set(head + rest)) == len(head + rest)  # every number once
    finally:
        records.close()


def test_a_failing_job_raises_from_the_iterator() -> None:
    def explode(value: int) -> int:
        if value == 500:
            raise RuntimeError("boom at 500")
        return value

    env = env_with(1)
    records = env.from_collection(list(range(1000))).map(explode).execute_and_collect()
    with pytest.raises(JobExecutionError, match="boom at 500"):
        for _ in records:
            pass
    records.close()


# -- force_non_parallel, rescale, partition_custom --------------------------------------------------------

def test_force_non_parallel_runs_the_operator_in_one_subtask(tmp_path: Path) -> None:
    env = env_with(3)
    source = env.from_source(NumberSequenceSource(0, 299), WatermarkStrategy.no_watermarks(), "seq")  # 3 subtasks
    tagged = source.map(TagSubtask()).force_non_parallel()
    with pytest.raises(ValueError, match="The parallelism of non parallel operator must be 1."):
        tagged.set_parallelism(2)
    with pytest.raises(ValueError, match="The maximum parallelism of non parallel operator must be 1."):
        tagged.set_max_parallelism(4)
    tagged.set_parallelism(1)
    tagged.add_sink(CollectSink(tmp_path))
    graph = env.get_job_graph()
    (vertex,) = [v for v in graph.vertices.values() if v.name.startswith("Map")]
    assert (vertex.parallelism, vertex.max_parallelism) == (1, 1)
    env.execute()
    out = read_collected(tmp_path)
    assert sorted(v for _, v in out) == list(range(300)) and {i for i, _ in out} == {0}


def test_rescale_channel_selection_is_flinks() -> None:
    # Flink's pointwise ranges (EdgeManagerBuildUtil.connectPointwise).
    assert [list(rescale_targets(2, 4, i)) for i in range(2)] == [[0, 1], [2, 3]]
    assert [list(rescale_targets(4, 2, i)) for i in range(4)] == [[0], [0], [1], [1]]
    assert [list(rescale_targets(2, 3, i)) for i in range(2)] == [[0, 1], [2]]
    assert [list(rescale_targets(3, 2, i)) for i in range(3)] == [[0], [1], [1]]
    assert [list(rescale_targets(3, 3, i)) for i in range(3)] == [[0], [1], [2]]
    # Round robin record by record over the range, from its first subtask on (nextChannelToSendTo = -1).
    partitioner = RescalePartitioner().for_edge(2, 4)
    partitioner.setup(4, 1)
    assert partitioner.partition([1, 2, 3]) == [[], [], [1, 3], [2]]
    assert partitioner.partition([4, 5]) == [[], [], [5], [4]]  # (continues where the last batch ended)
    stamped = partitioner.partition_stamped([6, 7, 8], [60, 70, 80])
    assert stamped == [([], []), ([], []), ([7], [70]), ([6, 8], [60, 80])]
    assert not partitioner.is_pointwise and RescalePartitioner().for_edge(3, 3).is_pointwise


@pytest.mark.parametrize("upstream, downstream", [(2, 4), (4, 2), (3, 3)])
def test_rescale_sends_each_subtask_to_its_range_round_robin(upstream: int, downstream: int) -> None:
    def pipeline(env: StreamExecutionEnvironment) -> Any:
        source = env.from_source(NumberSequenceSource(0, 999), WatermarkStrategy.no_watermarks(), "seq")
        tagged_up = source.set_parallelism(upstream).map(TagSubtask()).set_parallelism(upstream)
        return tagged_up.rescale().map(TagSubtask()).set_parallelism(downstream)

    planned = env_with(1)
    pipeline(planned).print()
    (edge,) = [e for e in planned.get_job_graph().edges() if e.ship_strategy == "RESCALE"]
    assert edge.is_pointwise == (upstream == downstream)
    out = list(pipeline(env_with(1)).execute_and_collect())
    pairs = [(up, down) for down, (up, _) in out]
    assert sorted(v for _, (_, v) in out) == list(range(1000))
    per_upstream: dict[int, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for up, down in pairs:
        per_upstream[up][down] += 1
    for up, counts in per_upstream.items():
        assert set(counts) <= set(rescale_targets(upstream, downstream, up))
        assert max(counts.values()) - min(counts.values()) <= 1  # round robin: even, record by record
        assert len(counts) == len(rescale_targets(upstream, downstream, up))


class ModuloPartitioner(Partitioner):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.opened_by = runtime_context.get_index_of_this_subtask()

    def partition(self, key: Any, num_partitions: int) -> int:
        return key % num_partitions


class FirstField(KeySelector):
    def get_key(self, value: Any) -> Any:
        return value[0]


@pytest.mark.parametrize("partitioner, key_selector", [(ModuloPartitioner(), FirstField()),
                                                       (lambda key, n: (key * 7) % n, lambda v: v[0])])
def test_partition_custom_routes_each_record_to_its_partition(partitioner: Any, key_selector: Any) -> None:
    env = env_with(3)
    data = [(i, f"v{i}") for i in range(200)]
    out = env.from_collection(data).partition_custom(partitioner, key_selector).map(TagSubtask()) \
        .execute_and_collect()
    partition = partitioner.partition if isinstance(partitioner, Partitioner) else partitioner
    assert sorted(out, key=lambda t: t[1][0]) == [(partition(k, 3), (k, v)) for k, v in data]


def test_partition_custom_refuses_bad_arguments_and_bad_partitions() -> None:
    env = env_with(2)
    ds = env.from_collection([(1, "a"), (2, "b")])
    with pytest.raises(TypeError, match="Parameter partitioner should be type of Partitioner or a callable"):
        ds.partition_custom(3, lambda v: v[0])
    with pytest.raises(TypeError, match="Parameter key_selector should be type of KeySelector or a callable"):
        ds.partition_custom(lambda k, n: 0, "first")
    with pytest.raises(JobExecutionError, match=r"returned 2 .*it must return a partition in 0\.\.1"):
        list(ds.partition_custom(lambda key, n: n, lambda v: v[0]).map(str).execute_and_collect())


# -- project and the recorded operator properties ---------------------------------------------------------

def test_project_keeps_the_given_fields_in_the_given_order() -> None:
    env = env_with(2)
    data = [(f"k{i}", i, i / 2) for i in range(50)]
    ds = env.from_collection(data, type_info=Types.TUPLE([Types.STRING(), Types.INT(), Types.DOUBLE()]))
    projected = ds.project(2, 0)
    assert [str(t) for t in projected.get_type().get_field_types()] == [str(Types.DOUBLE()), str(Types.STRING())]
    assert sorted(projected.execute_and_collect()) == sorted((f, k) for k, _, f in data)
    keyed = env.from_collection(data, type_info=Types.TUPLE([Types.STRING(), Types.INT(), Types.DOUBLE()])) \
        .key_by(lambda t: t[1] % 3)
    assert sorted(keyed.project(1).execute_and_collect()) == [(i,) for i in range(50)]
    with pytest.raises(Exception, match="Only Tuple DataStreams can be projected."):
        env.from_collection([1, 2]).project(0)
    with pytest.raises(Exception, match="Only Tuple DataStreams can be projected."):
        env.from_collection([Row(1)], type_info=Types.ROW([Types.INT()])).project(0)
    with pytest.raises(IndexError, match="Index: 3, Size: 3"):
        ds.project(0, 3)
    with pytest.raises(ValueError, match="at least one"):
        ds.project()


def test_descriptions_buffer_timeouts_and_slot_sharing_groups_are_recorded(tmp_path: Path) -> None:
    env = env_with(2)
    env.get_config().set_max_parallelism(64)
    ds = env.from_collection(list(range(20))).map(lambda v: v + 1)
    assert ds.get_execution_config().get_max_parallelism() == 64  # the environment's config
    assert ds.set_description("adds one") is ds and ds.set_buffer_timeout(5) is ds
    assert ds.slot_sharing_group("group-a") is ds
    with pytest.raises(ValueError, match="timeout must be >= -1"):
        ds.set_buffer_timeout(-2)
    sink = ds.add_sink(CollectSink(tmp_path))
    assert sink.set_description("collects").set_uid_hash("a1b2").slot_sharing_group("group-b") is sink
    t, s = ds._transformation, sink._transformation
    assert (t.description, t.buffer_timeout, t.slot_sharing_group) == ("adds one", 5, "group-a")
    assert (s.description, s.uid, s.slot_sharing_group) == ("collects", "a1b2", "group-b")
    env.execute()  # (recorded only: the job runs as without them)
    assert sorted(read_collected(tmp_path)) == list(range(1, 21))


def test_cache_is_refused_with_its_name() -> None:
    env = env_with(1)
    with pytest.raises(NotImplementedError, match=r"DataStream\.cache\(\) is not supported"):
        env.from_collection([1]).cache()
    with pytest.raises(Exception, match="Cache for KeyedStream is not supported."):
        env.from_collection([1]).key_by(lambda v: v).cache()


# -- KeyedStream: sum, min, max, min_by, max_by ----------------------------------------------------------

DATA = [("a", 3, "x"), ("a", 1, "y"), ("b", 5, "z"), ("a", 1, "w"), ("b", 7, "v"), ("a", 0, "u"),
        ("b", 7, "t")]


def rolling(data: list[Any], kind: str, i: int) -> list[Any]:
    """The expected outputs: the semantics written out record by record (no shared code with ha-flink)."""
    acc: dict[Any, Any] = {}
    out = []
    for record in data:
        key = record[0]
        if key not in acc:
            acc[key] = record
        else:
            old = acc[key]
            if kind in ("min_by", "max_by"):
                better = record[i] < old[i] if kind == "min_by" else record[i] > old[i]
                acc[key] = record if better else old
            else:
                value = {"sum": old[i] + record[i], "min": min(old[i], record[i]),
                         "max": max(old[i], record[i])}[kind]
                acc[key] = tuple(value if j == i else old[j] for j in range(len(old)))
        out.append(acc[key])
    return out


@pytest.mark.parametrize("kind", ["sum", "min", "max", "min_by", "max_by"])
def test_keyed_aggregations_by_position(kind: str) -> None:
    env = env_with(1)
    keyed = env.from_collection(DATA).key_by(lambda t: t[0])
    assert list(getattr(keyed, kind)(1).execute_and_collect()) == rolling(DATA, kind, 1)


@pytest.mark.parametrize("kind", ["sum", "min", "max", "min_by", "max_by"])
def test_keyed_aggregations_by_field_name_on_rows(kind: str) -> None:
    env = env_with(2)
    row_type = Types.ROW_NAMED(["key", "value", "tag"], [Types.STRING(), Types.INT(), Types.STRING()])
    keyed = env.from_collection(DATA, type_info=row_type).key_by(lambda r: r["key"])
    out = list(getattr(keyed, kind)("value").execute_and_collect())
    assert all(isinstance(r, Row) and r.as_dict().keys() == {"key", "value", "tag"} for r in out)
    expected = rolling(DATA, kind, 1)
    for key in ("a", "b"):  # (two subtasks: the order holds per key)
        assert [tuple(r) for r in out if r["key"] == key] == [t for t in expected if t[0] == key]


def test_keyed_aggregations_on_plain_values_and_lists() -> None:
    env = env_with(1)
    values = [5, 2, 8, 3, 9, 1]
    keyed = env.from_collection(values).key_by(lambda v: v % 2)
    assert list(keyed.min().execute_and_collect()) == [5, 2, 2, 3, 3, 1]
    keyed = env.from_collection(values).key_by(lambda v: v % 2)
    assert list(keyed.max_by(0).execute_and_collect()) == [5, 2, 8, 5, 9, 9]
    lists = [["a", 1], ["a", 2], ["a", 4]]
    out = list(env.from_collection(lists).key_by(lambda r: r[0]).sum(1).execute_and_collect())
    assert out == [["a", 1], ["a", 3], ["a", 7]] and lists == [["a", 1], ["a", 2], ["a", 4]]
    with pytest.raises(JobExecutionError, match="The 1 field selected on a basic type"):
        list(env.from_collection(values).key_by(lambda v: v % 2).sum(1).execute_and_collect())
    with pytest.raises(TypeError, match="The field position must be of int or str type"):
        env.from_collection(values).key_by(lambda v: v).sum(1.5)  # type: ignore[arg-type]


def test_accumulate_type_is_pyflinks() -> None:
    assert [(t.name, t.value) for t in KeyedStream.AccumulateType] == [
        ("MIN", 1), ("MAX", 2), ("MIN_BY", 3), ("MAX_BY", 4), ("SUM", 5)]


REFUSALS: list[tuple[str, Callable[[KeyedStream], Any], str]] = [
    ("shuffle", lambda k: k.shuffle(), "Cannot override partitioning for KeyedStream."),
    ("rescale", lambda k: k.rescale(), "Cannot override partitioning for KeyedStream."),
    ("rebalance", lambda k: k.rebalance(), "Cannot override partitioning for KeyedStream."),
    ("forward", lambda k: k.forward(), "Cannot override partitioning for KeyedStream."),
    ("broadcast", lambda k: k.broadcast(), "Cannot override partitioning for KeyedStream."),
    ("partition_custom", lambda k: k.partition_custom(lambda key, n: 0, lambda v: v),
     "Cannot override partitioning for KeyedStream."),
    ("set_parallelism", lambda k: k.set_parallelism(2), "Set parallelism for KeyedStream is not supported."),
    ("name", lambda k: k.name("n"), "Set name for KeyedStream is not supported."),
    ("get_name", lambda k: k.get_name(), "Get name of KeyedStream is not supported."),
    ("uid", lambda k: k.uid("u"), "Set uid for KeyedStream is not supported."),
    ("set_uid_hash", lambda k: k.set_uid_hash("h"), "Set uid hash for KeyedStream is not supported."),
    ("set_max_parallelism", lambda k: k.set_max_parallelism(8),
     "Set max parallelism for KeyedStream is not supported."),
    ("force_non_parallel", lambda k: k.force_non_parallel(),
     "Set force non-parallel for KeyedStream is not supported."),
    ("set_buffer_timeout", lambda k: k.set_buffer_timeout(1), "Set buffer timeout for KeyedStream is not supported."),
    ("start_new_chain", lambda k: k.start_new_chain(), "Start new chain for KeyedStream is not supported."),
    ("disable_chaining", lambda k: k.disable_chaining(), "Disable chaining for KeyedStream is not supported."),
    ("slot_sharing_group", lambda k: k.slot_sharing_group("g"),
     "Setting slot sharing group for KeyedStream is not supported."),
]


@pytest.mark.parametrize("method, call, message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_keyed_stream_refuses_as_pyflink(method: str, call: Callable[[KeyedStream], Any], message: str) -> None:
    keyed = env_with(1).from_collection([1]).key_by(lambda v: v)
    with pytest.raises(Exception) as raised:
        call(keyed)
    assert str(raised.value) == message


# -- broadcast's parameters -------------------------------------------------------------------------------

RULES = MapStateDescriptor("rules", Types.STRING(), Types.INT())


class Multiply(KeyedBroadcastProcessFunction):
    def open(self, runtime_context: Any) -> None:
        self.values = runtime_context.get_list_state(ListStateDescriptor("values", Types.INT()))

    def process_element(self, value: Any, ctx: Any) -> Any:
        self.values.add(value)
        ctx.timer_service().register_event_time_timer(0)  # fires at the end of input, after the rules

    def process_broadcast_element(self, value: Any, ctx: Any) -> Any:
        ctx.get_broadcast_state(RULES).put(value[0], value[1])

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        factor = ctx.get_broadcast_state(RULES).get("factor")
        for value in self.values.get():
            yield value * factor


def test_broadcast_takes_pyflinks_parameter_names() -> None:
    env = env_with(2)
    rules = env.from_collection([("factor", 3)]).broadcast(broadcast_state_descriptor=RULES)
    assert isinstance(rules, BroadcastStream) and rules.broadcast_state_descriptors == [RULES]
    again = BroadcastStream(input_stream=rules.input_stream, broadcast_state_descriptors=[RULES])
    connected = env.from_collection(list(range(20))).key_by(lambda v: v % 4).connect(again)
    assert isinstance(connected, BroadcastConnectedStream) and connected.broadcast_state_descriptors == [RULES]
    assert sorted(connected.process(Multiply()).execute_and_collect()) == [3 * v for v in range(20)]
    with pytest.raises(TypeError, match="broadcast_state_descriptor must be MapStateDescriptor"):
        env.from_collection([1]).broadcast(RULES, "not a descriptor")
