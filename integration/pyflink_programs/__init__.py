"""PyFlink programs, written in PyFlink's own idiom and imports (`pyflink.`): the compatibility check
(`integration/test_pyflink_compat.py`) runs each with the import root changed to `ha_flink.`, nothing
else, locally and on a cluster."""
