"""PyFlink's user metrics (`pyflink.metrics`, `RuntimeContext.get_metrics_group()`): the group and metric API,
and a running local job's counter, meter, gauge and distribution read back where Flink shows them, the
TaskManager's Prometheus endpoint and the REST API's vertex and subtask metrics; and the task name with
subtasks in Flink's format, across a restart."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ha_flink.common import Configuration, Types, WatermarkStrategy
from ha_flink.config import Configuration as DaemonConfiguration
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors import DataGeneratorSource, NumberSequenceSource, RateLimiterStrategy
from ha_flink.datastream.functions import MapFunction, RuntimeContext
from ha_flink.metrics import Counter, Distribution, Meter, Metric, MetricGroup
from ha_flink.metrics.groups import MeterView, TaskMetricGroup
from ha_flink.runtime.metrics.prometheus import MetricSample, PrometheusReporter
from ha_flink.runtime.metrics.user import user_metric_samples, user_metric_values
from ha_flink.runtime.minicluster import MiniCluster
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.processes import wait_for
from ha_flink.testing.sinks import CollectSink, read_collected


def operator_group(name: str = "Map") -> tuple[TaskMetricGroup, MetricGroup]:
    task = TaskMetricGroup()
    return task, task.add_operator(name, 1)


def values_of(task: TaskMetricGroup) -> dict[str, str]:
    return user_metric_values(task)


# ---- the group and metric API ------------------------------------------------------------------------------

def test_counter_meter_and_distribution_are_pyflinks_metrics() -> None:
    task, group = operator_group()
    counter = group.counter("events")
    counter.inc()
    counter.inc(5)
    counter.dec(2)
    assert isinstance(counter, Counter) and isinstance(counter, Metric) and counter.get_count() == 4
    meter = group.meter("throughput")
    meter.mark_event()
    meter.mark_event(9)
    assert isinstance(meter, Meter) and meter.get_count() == 10
    distribution = group.distribution("latency")
    assert isinstance(distribution, Distribution)
    for value in (4, 1, 7):
        distribution.update(value)
    group.gauge("queue", lambda: 17)
    values = values_of(task)
    assert values["Map.events"] == "4" and values["Map.queue"] == "17" and values["Map.throughput_count"] == "10"
    assert (values["Map.latency_count"], values["Map.latency_sum"], values["Map.latency_min"],
            values["Map.latency_max"], values["Map.latency_mean"]) == ("3", "12", "1", "7", "4.0")
    with pytest.raises(TypeError, match="distribution takes numbers, not str"):
        distribution.update("5")  # type: ignore[arg-type]


def test_an_empty_distribution_reports_its_count_and_sum_only() -> None:
    task, group = operator_group()
    group.distribution("sizes")
    assert values_of(task) == {"Map.sizes_count": "0", "Map.sizes_sum": "0"}


def test_a_meter_reports_events_per_second_over_its_time_span_as_flinks_meter_view() -> None:
    now = [100.0]
    meter = MeterView(10, clock=lambda: now[0])
    assert meter.time_span_s == 10
    assert MeterView(12).time_span_s == 10 and MeterView(3).time_span_s == 5  # multiples of 5 s, as Flink's
    meter.mark_event(50)
    now[0] += 5
    meter.update(now[0])
    assert meter.get_rate() == 5.0  # the window is not yet full: 50 events over the whole 10 s span
    for _ in range(20):  # 10 events a second from now on
        now[0] += 1
        meter.mark_event(10)
        meter.update(now[0])
    assert meter.get_rate() == pytest.approx(10.0)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="time_span_in_seconds must be a positive whole number"):
            MeterView(bad)  # type: ignore[arg-type]


def test_groups_key_value_groups_and_identifiers_follow_flink() -> None:
    task, group = operator_group("Count words")
    plain = group.add_group("my_group")
    assert group.add_group("my_group") is plain  # the same group, not a second one
    plain.counter("seen").inc(3)
    pair = group.add_group("shard", "eu-1")
    assert group.add_group("shard", "eu-1") is pair
    pair.counter("seen").inc(2)
    group.add_group("shard", "us-2").counter("seen").inc(7)
    assert pair.get_scope_components() == ("Count words", "shard", "eu-1")  # type: ignore[attr-defined]
    assert pair.get_metric_identifier("seen") == "Count words.shard.eu-1.seen"  # type: ignore[attr-defined]
    assert pair.get_all_variables() == {"<shard>": "eu-1"}  # type: ignore[attr-defined]
    assert values_of(task) == {"Count words.my_group.seen": "3", "Count words.shard.eu-1.seen": "2",
                               "Count words.shard.us-2.seen": "7"}
    samples = user_metric_samples(task, "v1", {"job_id": "j1", "subtask_index": "0"})
    by_name = {(s.name, s.labels.get("shard")): s for s in samples}
    # Flink's Prometheus names: the logical scope (generic and key groups) and the name; a value is a label
    assert by_name[("taskmanager_job_task_operator_my_group_seen", None)].value == 3
    eu = by_name[("taskmanager_job_task_operator_shard_seen", "eu-1")]
    assert eu.value == 2 and eu.labels == {"shard": "eu-1", "job_id": "j1", "subtask_index": "0",
                                           "operator_id": "v1_1", "operator_name": "Count words"}
    assert by_name[("taskmanager_job_task_operator_shard_seen", "us-2")].value == 7


def test_bad_names_are_errors_naming_what_was_wrong() -> None:
    _, group = operator_group()
    for bad in ("", "   "):
        with pytest.raises(ValueError, match="metric name must not be empty or blank"):
            group.counter(bad)
        with pytest.raises(ValueError, match="metric group name must not be empty"):
            group.add_group(bad)
        with pytest.raises(ValueError, match="metric group value name must not be empty"):
            group.add_group("key", bad)
    with pytest.raises(TypeError, match="metric name must be a string, not int"):
        group.counter(7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gauge 'Map.g' needs a callable"):
        group.gauge("g", 5)  # type: ignore[arg-type]
    group.add_group("plain")
    with pytest.raises(ValueError, match="'Map.plain' is a generic group; it cannot be added again as a key group"):
        group.add_group("plain", "value")


def test_a_name_registered_twice_keeps_the_first_metric_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    task, group = operator_group()
    first = group.counter("events")
    with caplog.at_level(logging.WARNING, "ha_flink.metrics.groups"):
        again = group.counter("events")
    assert again is first  # both handles update what is reported
    assert "Name collision: metric 'Map.events' is already registered; the first counter is kept" in caplog.text
    again.inc(2)
    group.gauge("level", lambda: 1)
    group.gauge("level", lambda: 2)
    assert values_of(task) == {"Map.events": "2", "Map.level": "1"}
    with pytest.raises(ValueError, match="metric 'Map.events' is already registered as a counter; a meter needs"):
        group.meter("events")


def test_a_failing_gauge_is_logged_once_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    task, group = operator_group()
    group.counter("fine").inc()
    group.gauge("broken", lambda: 1 // 0)
    group.gauge("text", lambda: "high")  # type: ignore[arg-type,return-value]
    with caplog.at_level(logging.WARNING, "ha_flink.metrics.groups"):
        for _ in range(3):
            assert values_of(task) == {"Map.fine": "1"}
            assert [s.name for s in user_metric_samples(task, "v", {})] == ["taskmanager_job_task_operator_fine"]
    assert caplog.text.count("Gauge Map.broken raised") == 1
    assert caplog.text.count("Gauge Map.text answered str 'high', not a number") == 1


def test_contexts_outside_an_operator_say_they_have_no_metric_group() -> None:
    from ha_flink.runtime.partitioner import _PartitionerContext

    context = _PartitionerContext("Map", 4, 128, 2, {})
    assert context.get_task_name_with_subtasks() == "Map (3/4)#0"
    with pytest.raises(NotImplementedError, match="_PartitionerContext has no metric group"):
        context.get_metrics_group()


# ---- a running job ----------------------------------------------------------------------------------------

class Instrumented(MapFunction):
    """Registers one metric of each kind in open() and updates them per record."""

    def open(self, runtime_context: RuntimeContext) -> None:
        group = runtime_context.get_metrics_group().add_group("app")
        self.records = group.counter("records")
        self.rate = group.meter("rate", time_span_in_seconds=5)
        self.sizes = group.add_group("kind", "even").distribution("sizes")
        self.last = 0
        group.gauge("last", lambda: self.last)
        group.gauge("broken", lambda: 1 // 0)  # must not crash the task or the scrape

    def map(self, value: int) -> int:
        self.records.inc()
        self.rate.mark_event()
        if value % 2 == 0:
            self.sizes.update(value % 10)
        self.last = value
        return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def prometheus_value(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    return None


def test_a_running_jobs_user_metrics_reach_prometheus_and_rest(tmp_path: Path) -> None:
    config = Configuration()
    config.set_string("rest.port", "0")
    config.set_string("metrics.fetcher.update-interval", "100 ms")
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(2)
    source = DataGeneratorSource(lambda i: i, 10_000_000, RateLimiterStrategy.per_second(400), Types.LONG())
    env.from_source(source, WatermarkStrategy.no_watermarks(), "numbers").map(Instrumented()).name("instrumented") \
        .add_sink(CollectSink(tmp_path / "out"))
    client = env.execute_async("user metrics")
    cluster = client.mini_cluster
    assert isinstance(cluster, MiniCluster) and cluster.job_manager is not None
    executor = cluster.task_executors[0]

    def samples() -> list[MetricSample]:  # as the daemon's reporter reads them: on the event loop
        async def on_loop() -> list[MetricSample]:
            return executor.metric_samples()
        return asyncio.run_coroutine_threadsafe(on_loop(), cluster.loop).result(10)

    reporter_config = DaemonConfiguration()  # the TaskManager's reporter, as deploy/entrypoint.py starts it
    reporter_config.set("metrics.reporter.prom.port", str(free_port()))
    reporter_config.set("metrics.reporter.prom.host", "127.0.0.1")
    reporter = PrometheusReporter(reporter_config, samples)
    try:
        port = reporter.start()
        assert port is not None
        wait_for(lambda: len(read_collected(tmp_path / "out")) > 50, 20, what="records through the job")

        def scraped() -> str | None:
            text = scrape(port)
            rate = prometheus_value(text, "flink_taskmanager_job_task_operator_app_rate", subtask_index="0")
            return text if rate and rate > 0 else None

        text = wait_for(scraped, 20, what="a meter rate above 0 on the Prometheus endpoint")
        job_id = str(client.get_job_id())
        labels = {"job_id": job_id, "operator_name": "instrumented"}
        for index in ("0", "1"):
            assert prometheus_value(text, "flink_taskmanager_job_task_operator_app_records", subtask_index=index,
                                    **labels)
        assert prometheus_value(text, "flink_taskmanager_job_task_operator_app_last", **labels) is not None
        assert prometheus_value(text, "flink_taskmanager_job_task_operator_app_rate_count", **labels)
        # the key group's name is in the metric's name, its value a label
        assert prometheus_value(text, "flink_taskmanager_job_task_operator_app_kind_sizes_max", kind="even",
                                **labels) == 8.0
        assert "app_broken" not in text
        assert "# TYPE flink_taskmanager_job_task_operator_app_records gauge" in text

        rest = cluster.job_manager.rest_address
        job = get_json(f"{rest}/jobs/{job_id}")
        vertex = next(v for v in job["vertices"] if "instrumented" in v["name"])
        base = f"{rest}/jobs/{job_id}/vertices/{vertex['id']}"
        ids = wait_for(lambda: {m["id"] for m in get_json(f"{base}/metrics")} >= {
            "0.instrumented.app.records", "1.instrumented.app.records"} and {m["id"] for m in get_json(
                f"{base}/metrics")}, 10, what="the vertex's user metrics in REST")
        assert {"0.numRecordsIn", "1.instrumented.app.rate", "0.instrumented.app.kind.even.sizes_mean",
                "0.instrumented.app.last"} <= ids
        wanted = "0.instrumented.app.records,1.instrumented.app.rate,not.there"
        answer = get_json(f"{base}/metrics?get={urllib.parse.quote(wanted)}")
        assert [m["id"] for m in answer] == ["0.instrumented.app.records", "1.instrumented.app.rate"]
        assert int(answer[0]["value"]) > 0 and float(answer[1]["value"]) > 0

        first = int(get_json(f"{base}/subtasks/0/metrics?get=instrumented.app.records")[0]["value"])
        wait_for(lambda: int(get_json(f"{base}/subtasks/0/metrics?get=instrumented.app.records")[0]["value"])
                 > first, 10, what="the counter to grow while the job runs")
        aggregated = get_json(f"{base}/subtasks/metrics?get=instrumented.app.records&agg=min,sum")
        assert aggregated[0]["id"] == "instrumented.app.records" and set(aggregated[0]) == {"id", "min", "sum"}
        assert aggregated[0]["sum"] >= 2 * aggregated[0]["min"] > 0
        with pytest.raises(urllib.error.HTTPError) as error:
            get_json(f"{base}/subtasks/metrics?get=x&agg=median")
        assert error.value.code == 400 and "agg median is not supported" in error.value.read().decode()
        with pytest.raises(urllib.error.HTTPError) as error:
            get_json(f"{rest}/jobs/{job_id}/vertices/nope/metrics")
        assert error.value.code == 404 and "vertex nope not found" in error.value.read().decode()
        assert client.get_job_status().result(5).name == "RUNNING"  # the failing gauge crashed nothing
    finally:
        reporter.stop()
        client.cancel().result(10)


class TaskNames(MapFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.context = runtime_context

    def map(self, value: int) -> tuple[str, str, int, int, int]:
        c = self.context
        return (c.get_task_name_with_subtasks(), c.get_task_name(), c.get_index_of_this_subtask(),
                c.get_number_of_parallel_subtasks(), c.get_attempt_number())


def test_task_name_with_subtasks_is_flinks_format_across_a_restart(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.enable_checkpointing(100)
    env.from_source(NumberSequenceSource(1, 400), WatermarkStrategy.no_watermarks(), "numbers") \
        .map(FailOnceAt(300)).map(TaskNames()).add_sink(CollectSink(tmp_path / "out"))
    env.execute("task names")
    records = read_collected(tmp_path / "out")
    assert records and records[0][0].startswith(records[0][1] + " (")
    assert all(name == f"{task} ({index + 1}/2)#{attempt}" for name, task, index, _, attempt in records)
    assert {index for _, _, index, _, _ in records} == {0, 1}
    assert {attempt for _, _, _, _, attempt in records} == {0, 1}  # the restart's attempt shows after '#'
