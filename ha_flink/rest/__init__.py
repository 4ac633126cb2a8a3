"""The REST API (Flink's paths) served by every JobManager on its `rest.port`."""
