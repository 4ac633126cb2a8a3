"""The user metrics of a subtask (`RuntimeContext.get_metrics_group()`, `ha_flink.metrics`) as the reporters
show them, with Flink's names:

- Prometheus: `taskmanager_job_task_operator_<groups>_<name>` (the generic and key groups' names; a value
  group is a label `<key>="<value>"`), with the task's labels plus `operator_id` and `operator_name`;
  characters Prometheus does not allow become '_', as Flink's PrometheusReporter does.
- REST: the id below the subtask, `<operator>.<groups>.<name>` (key and value groups both), as Flink's
  MetricStore; the vertex's metrics prefix it with `<subtask index>.`.

A counter and a gauge report their value, a meter its rate (`<name>`) and count (`<name>_count`), a
distribution `<name>_count`, `_sum`, `_min`, `_max` and `_mean`."""

from __future__ import annotations

import re

from ha_flink.metrics.groups import OperatorMetricGroup, TaskMetricGroup
from ha_flink.runtime.metrics.prometheus import MetricSample

OPERATOR_SCOPE = "taskmanager_job_task_operator"
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9:_]")
_NOT_ALLOWED_IN_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def prometheus_name(part: str) -> str:
    return _NOT_ALLOWED.sub("_", part)


def _label_name(key: str) -> str:
    name = _NOT_ALLOWED_IN_LABEL.sub("_", key)
    return f"_{name}" if name[:1].isdigit() else name


def operator_id(vertex_id: str, group: OperatorMetricGroup) -> str:
    """The operator's id (Flink's `operator_id` label): its vertex and its position in the chain."""
    return f"{vertex_id}_{group.chain_index}"


def user_metric_samples(metrics: TaskMetricGroup, vertex_id: str, task_labels: dict[str, str]) -> list[MetricSample]:
    """The Prometheus samples of one subtask's user metrics (gauges are called here)."""
    samples = []
    for group in metrics.operators():
        labels = {**task_labels, "operator_id": operator_id(vertex_id, group), "operator_name": group.operator_name}
        for value in group.reported():
            name = "_".join((OPERATOR_SCOPE, *(prometheus_name(p) for p in (*value.logical_scope, value.name))))
            # the task's labels win over a user variable of the same name, which would otherwise relabel the task
            variables = {_label_name(key): text for key, text in value.variables}
            samples.append(MetricSample(name, float(value.value), {**variables, **labels}))
    return samples


def user_metric_values(metrics: TaskMetricGroup) -> dict[str, str]:
    """One subtask's user metrics for REST: `<operator>.<groups>.<name>` -> the value as text (gauges are
    called here)."""
    values = {}
    for group in metrics.operators():
        for value in group.reported():
            values[".".join((group.operator_name, *value.scope, value.name))] = str(value.value)
    return values
