"""PyFlink's `pyflink.datastream.formats`: the JSON, CSV and Avro row schemas (`formats.json`, `.csv`,
`.avro`), defined in `ha_flink/common/row_schemas.py` and `avro_rows.py` since `pyflink.common` re-exports
them too."""
