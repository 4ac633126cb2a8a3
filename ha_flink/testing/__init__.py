"""Real servers for tests: ZooKeeper (single node and ensembles), a moto S3 server, process helpers.

Both tests/ and integration/ load `ha_flink.testing.fixtures` as a pytest plugin (see conftest.py)."""
