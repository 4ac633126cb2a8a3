"""PyFlink's `pyflink.datastream.formats`: the JSON and CSV row schemas (`formats.json`, `formats.csv`),
defined in `ha_flink/common/row_schemas.py` since `pyflink.common` re-exports them too."""
