"""Root conftest: the real-server fixtures shared by tests/ and integration/."""

pytest_plugins = ["ha_flink.testing.fixtures"]
