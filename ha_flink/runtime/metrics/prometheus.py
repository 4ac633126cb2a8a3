"""The Prometheus reporter of one daemon (Flink's `metrics.reporter.prom.*`): an HTTP endpoint on the
first free port of `metrics.reporter.prom.port` (a port or a range such as `9249-9260`, so several
daemons on one host each find one), serving the daemon's metrics in Prometheus' text format.

Names follow Flink's Prometheus reporter: `flink_<scope>_<metric>`, e.g. `flink_jobmanager_job_numRestarts`
with `job_id` and `job_name` labels, `flink_taskmanager_job_task_numRecordsIn` with the task's labels.
Counters are reported as gauges, as Flink's reporter does. The values are read at scrape time from the
daemon (`collect`), so nothing is kept twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ha_flink.config import Configuration, MetricOptions
from ha_flink.config.options import parse_port_range

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricSample:
    name: str  # Flink's scope and name, e.g. "jobmanager_job_numRestarts"
    value: float
    labels: dict[str, str] = field(default_factory=dict)


HELP = {
    "numRestarts": "restarts of the job since it was submitted to this leader (Flink: numRestarts)",
    "uptime": "ms the job has been RUNNING without interruption (0 when not running)",
    "downtime": "ms the job has been failing or restarting in its current outage (0 when running)",
    "restartingTime": "ms of the current restart of the whole job, else of the last one (0: none yet)",
    "isLeader": "1 if this JobManager leads the cluster",
    "leaderChanges": "changes of the cluster's leader this JobManager has seen since it started",
    "zooKeeperConnected": "1 while this daemon's ZooKeeper session is connected",
}


class _Collector(Collector):
    def __init__(self, collect: Callable[[], Iterable[MetricSample]]) -> None:
        self.collect_samples = collect

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families: dict[tuple[str, tuple[str, ...]], GaugeMetricFamily] = {}
        try:
            samples = list(self.collect_samples())
        except Exception:  # logged, and the scrape fails (an empty answer would read as "no series")
            logger.exception("Collecting metrics failed")
            raise
        for sample in samples:
            keys = tuple(sorted(sample.labels))
            family = families.get((sample.name, keys))
            if family is None:
                short = sample.name.rsplit("_", 1)[-1]
                family = GaugeMetricFamily(f"flink_{sample.name}", HELP.get(short, short), labels=keys)
                families[(sample.name, keys)] = family
            family.add_metric([sample.labels[k] for k in keys], sample.value)
        yield from families.values()


class PrometheusReporter:
    def __init__(self, config: Configuration, collect: Callable[[], Iterable[MetricSample]],
                 bind_host: str = "0.0.0.0") -> None:
        """`bind_host`: the daemon's own (jobmanager/taskmanager.bind-host), unless metrics.reporter.prom.host."""
        self.config = config
        self.collect = collect
        self.bind_host = bind_host
        self.port: int | None = None
        self._server: WSGIServer | None = None

    def start(self) -> int | None:
        """Serve on the first free port of the range; None when no reporter is configured."""
        text = self.config.get(MetricOptions.PROMETHEUS_PORT)
        if not text:
            return None
        ports = parse_port_range(text)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self.collect))
        host = self.config.get(MetricOptions.PROMETHEUS_HOST) or self.bind_host
        for port in ports:
            try:
                self._server, _ = start_http_server(port, addr=host, registry=registry)
            except OSError:
                continue
            self.port = port
            logger.info("Prometheus metrics at http://%s:%d/metrics", host, port)
            return port
        raise OSError(f"no free port for the Prometheus reporter in {text!r} "
                      f"({MetricOptions.PROMETHEUS_PORT.key}): every one is in use")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
