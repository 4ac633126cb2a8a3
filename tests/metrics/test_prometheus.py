"""The Prometheus reporter serves what the daemon reports at scrape time, on the first free port of its
range, and names a bad range."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from ha_flink.config import Configuration, ConfigurationError
from ha_flink.config.options import parse_port_range
from ha_flink.runtime.metrics.prometheus import MetricSample, PrometheusReporter


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_port_ranges() -> None:
    assert parse_port_range("9249") == [9249]
    assert parse_port_range(" 9249-9251 ") == [9249, 9250, 9251]
    for bad in ("nine", "9251-9249", "0-3", "70000"):
        with pytest.raises(ValueError, match=bad.strip()):
            parse_port_range(bad)


def test_a_bad_port_range_is_a_configuration_error_naming_the_key() -> None:
    config = Configuration()
    with pytest.raises(ConfigurationError, match="metrics.reporter.prom.port"):
        config.set("metrics.reporter.prom.port", "92x9")


def test_the_reporter_takes_the_next_free_port_and_serves_the_samples_of_the_scrape() -> None:
    port = free_port()
    taken = socket.socket()
    taken.bind(("127.0.0.1", port))
    taken.listen()
    value = [1.0]
    config = Configuration()
    config.set("metrics.reporter.prom.port", f"{port}-{port + 20}")
    config.set("metrics.reporter.prom.host", "127.0.0.1")
    reporter = PrometheusReporter(config, lambda: [
        MetricSample("jobmanager_isLeader", value[0]),
        MetricSample("jobmanager_job_numRestarts", 3, {"job_id": "j1", "job_name": "count"})])
    try:
        served = reporter.start()
        assert served is not None and served != port
        value[0] = 0.0  # read at scrape time
        text = urllib.request.urlopen(f"http://127.0.0.1:{served}/metrics", timeout=5).read().decode()
        assert "flink_jobmanager_isLeader 0.0" in text
        assert 'flink_jobmanager_job_numRestarts{job_id="j1",job_name="count"} 3.0' in text
        assert "# TYPE flink_jobmanager_job_numRestarts gauge" in text
    finally:
        reporter.stop()
        taken.close()


def test_no_port_configured_means_no_reporter() -> None:
    assert PrometheusReporter(Configuration(), lambda: []).start() is None


def test_a_failing_collection_fails_the_scrape_instead_of_answering_no_series() -> None:
    config = Configuration()
    config.set("metrics.reporter.prom.port", str(free_port()))
    config.set("metrics.reporter.prom.host", "127.0.0.1")

    def broken() -> list[MetricSample]:
        raise TimeoutError("the event loop did not answer")

    reporter = PrometheusReporter(config, broken)
    try:
        port = reporter.start()
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert error.value.code == 500
    finally:
        reporter.stop()
