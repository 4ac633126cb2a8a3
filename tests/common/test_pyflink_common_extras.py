"""The rest of `pyflink.common`: typed config options, `Configuration.from_dict` and list values, restart
strategy descriptions (and their configuration reaching a job), Row kinds and field lookups, the internal
type conversions, the byte schemas, the JSON and CSV row schemas, and TypeSerializer."""

from __future__ import annotations

import datetime
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest

from ha_flink.common import (
    ByteArraySchema, ConfigOptions, Configuration, CsvRowDeserializationSchema, CsvRowSerializationSchema,
    ExecutionConfig, InputDependencyConstraint, JsonRowDeserializationSchema, JsonRowSerializationSchema,
    RestartStrategies, Row, RowKind, TypeSerializer, Types,
)
from ha_flink.common.serialization import RowFieldExtractorSchema
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.formats.json import JsonRowSerializationSchema as FormatsJson
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.sinks import CollectSink, read_collected

# ---- configuration ------------------------------------------------------------------------------------------


def test_config_options_parse_and_render_by_type() -> None:
    parallelism = ConfigOptions.key("application.parallelism").int_type().default_value(100)
    assert parallelism.key() == "application.parallelism" and parallelism.default_value() == 100
    assert parallelism.parse(" 7 ") == 7
    with pytest.raises(ValueError, match="application.parallelism"):
        parallelism.parse("seven")
    with pytest.raises(ValueError, match="application.parallelism"):
        parallelism.parse(str(2 ** 31))  # an int option is Java's int
    assert ConfigOptions.key("big").long_type().no_default_value().parse(str(2 ** 40)) == 2 ** 40
    flag = ConfigOptions.key("flag").boolean_type().default_value(False)
    assert flag.to_text(True) == "true" and flag.parse("TRUE") is True
    with pytest.raises(ValueError, match="flag"):
        flag.to_text("yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tmp.count"):
        ConfigOptions.key("tmp.count").int_type().default_value("ten")  # type: ignore[arg-type]
    user = ConfigOptions.key("user.name").string_type().no_default_value()
    assert not user.has_default_value() and user.default_value() is None


def test_configuration_from_dict_and_list_values() -> None:
    config = Configuration.from_dict({"parallelism.default": "4", "pipeline.auto-watermark-interval": "200 ms"})
    assert config.get_integer("parallelism.default", 1) == 4
    assert config.to_dict() == {"parallelism.default": "4", "pipeline.auto-watermark-interval": "200 ms"}
    assert Configuration.parse_list_value("") == []
    assert Configuration.parse_list_value("[a.jar, b.jar]") == ["a.jar", "b.jar"]
    assert Configuration.parse_list_value("a.jar;b.jar") == ["a.jar", "b.jar"]
    assert ExecutionConfig.PARALLELISM_DEFAULT == -1 and ExecutionConfig.PARALLELISM_UNKNOWN == -2
    assert [c.name for c in InputDependencyConstraint] == ["ANY", "ALL"]


def test_restart_strategies_describe_themselves_as_flink() -> None:
    fixed = RestartStrategies.fixed_delay_restart(3, 10_000)
    assert fixed.get_restart_attempts() == 3
    assert fixed.get_delay_between_attempts_interval() == timedelta(seconds=10)
    assert fixed.get_description() == "Restart with fixed delay (10 s). #3 restart attempts."
    rate = RestartStrategies.failure_rate_restart(2, timedelta(minutes=1), 500)
    assert rate.get_description() == \
        "Failure rate restart with maximum of 2 failures within interval 60 s and fixed delay 500 ms."
    assert RestartStrategies.no_restart().get_description() == "Restart deactivated."
    assert RestartStrategies.fall_back_restart().to_configuration().to_dict() == {}
    assert fixed == RestartStrategies.fixed_delay_restart(3, timedelta(seconds=10))
    with pytest.raises(TypeError, match="delay_between_attempts_interval"):
        RestartStrategies.fixed_delay_restart(3, "10 s")  # type: ignore[arg-type]


def test_a_restart_strategys_configuration_reaches_the_job(tmp_path: Path) -> None:
    def run(strategy: object) -> list[int]:
        sink = CollectSink(tmp_path / type(strategy).__name__)
        env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
        env.configure(strategy.to_configuration())  # type: ignore[attr-defined]
        env.from_collection(list(range(20))).map(FailOnceAt(10)).add_sink(sink)
        env.execute()
        return sorted(read_collected(sink.folder))

    # restarted once (no checkpoints: the records before the failure come again), then finished
    assert set(run(RestartStrategies.fixed_delay_restart(1, 1))) == set(range(20))
    with pytest.raises(Exception, match="failing once at 10"):
        run(RestartStrategies.no_restart())


# ---- Row and type conversions ----------------------------------------------------------------------------------

def test_row_of_kind_and_fields_by_names() -> None:
    row = Row.of_kind(RowKind.DELETE, name="Alice", age=11)
    assert row.get_row_kind() is RowKind.DELETE and row.age == 11
    assert row.get_fields_by_names(["name", "age"]) == ["Alice", 11]
    with pytest.raises(KeyError, match="height"):
        row.get_fields_by_names(["height"])
    assert Row(1, 2).get_fields_by_names(["x"]) == [1, 2]  # an unnamed row: all of its values


def test_internal_type_conversions_are_pyflinks() -> None:
    date = Types.SQL_DATE()
    assert date.need_conversion() and date.to_internal_type(datetime.date(1970, 1, 11)) == 10
    assert date.from_internal_type(10) == datetime.date(1970, 1, 11)
    time_type = Types.SQL_TIME()
    assert time_type.to_internal_type(datetime.time(1, 0, 0, 5)) == 3600 * 10 ** 6 + 5
    assert time_type.from_internal_type(3600 * 10 ** 6 + 5) == datetime.time(1, 0, 0, 5)
    stamp = Types.SQL_TIMESTAMP()
    moment = datetime.datetime(2024, 1, 31, 12, 30, 0, 123456)
    assert stamp.from_internal_type(stamp.to_internal_type(moment)) == moment
    assert not Types.INT().need_conversion() and Types.INT().to_internal_type(5) == 5
    row_type = Types.ROW_NAMED(["d", "n"], [Types.SQL_DATE(), Types.INT()])
    assert row_type.to_internal_type(Row.of_kind(RowKind.UPDATE_AFTER, d=datetime.date(1970, 1, 2), n=3)) == \
        (RowKind.UPDATE_AFTER.value, 1, 3)
    assert Types.TUPLE([Types.SQL_DATE()]).to_internal_type((datetime.date(1970, 1, 3),)) == (2,)


# ---- byte schemas and TypeSerializer ---------------------------------------------------------------------------

def test_byte_array_and_row_field_extractor_schemas() -> None:
    schema = ByteArraySchema()
    assert schema.serialize(b"\x00\x01") == b"\x00\x01" and schema.deserialize(bytearray(b"ab")) == b"ab"
    with pytest.raises(TypeError, match="bytes"):
        schema.serialize("text")  # type: ignore[arg-type]
    key = RowFieldExtractorSchema(0)
    assert key.serialize(Row(b"key", b"value")) == b"key" and key.serialize(Row(None, b"v")) == b""
    with pytest.raises(ValueError, match="index 1 must be of type bytes"):
        RowFieldExtractorSchema(1).serialize(Row(b"k", "not bytes"))
    with pytest.raises(ValueError, match="non-negative"):
        RowFieldExtractorSchema(-1)


def test_a_user_type_serializer() -> None:
    class PointSerializer(TypeSerializer[tuple[int, int]]):
        def serialize(self, element: tuple[int, int], stream: BytesIO) -> None:
            stream.write(element[0].to_bytes(4, "big") + element[1].to_bytes(4, "big"))

        def deserialize(self, stream: BytesIO) -> tuple[int, int]:
            data = stream.read(8)
            return int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big")

    serializer = PointSerializer()
    assert serializer.from_bytes(serializer.to_bytes((3, 4))) == (3, 4)
    assert serializer == PointSerializer() and repr(serializer) == "PointSerializer()"


# ---- JSON and CSV rows -----------------------------------------------------------------------------------------

PERSON = Types.ROW_NAMED(["name", "age", "born", "tags", "address"],
                         [Types.STRING(), Types.INT(), Types.SQL_DATE(), Types.OBJECT_ARRAY(Types.STRING()),
                          Types.ROW_NAMED(["city"], [Types.STRING()])])


def test_json_rows_round_trip() -> None:
    out = JsonRowSerializationSchema.builder().with_type_info(PERSON).build()
    data = out.serialize(Row("Ada", 36, datetime.date(1815, 12, 10), ["math"], Row("London")))
    assert data == b'{"name":"Ada","age":36,"born":"1815-12-10","tags":["math"],"address":{"city":"London"}}'
    back = JsonRowDeserializationSchema.builder().type_info(PERSON).build().deserialize(data)
    assert back.as_dict(recursive=True) == {"name": "Ada", "age": 36, "born": datetime.date(1815, 12, 10),
                                            "tags": ["math"], "address": {"city": "London"}}
    assert back.address.city == "London" and back.name == "Ada"
    assert FormatsJson is JsonRowSerializationSchema  # pyflink.datastream.formats.json's name too


def test_json_rows_missing_fields_and_parse_errors() -> None:
    lenient = JsonRowDeserializationSchema.builder().type_info(PERSON).build()
    assert list(lenient.deserialize(b'{"name": "Bo"}')) == ["Bo", None, None, None, None]
    strict = JsonRowDeserializationSchema.builder().type_info(PERSON).fail_on_missing_field().build()
    with pytest.raises(ValueError, match="'age'"):
        strict.deserialize(b'{"name": "Bo"}')
    with pytest.raises(ValueError, match="Failed to deserialize JSON"):
        lenient.deserialize(b"{not json")
    skipping = JsonRowDeserializationSchema.builder().type_info(PERSON).ignore_parse_errors().build()
    assert skipping.deserialize(b"{not json") is None
    with pytest.raises(TypeError, match="RowTypeInfo"):
        JsonRowSerializationSchema.builder().with_type_info(Types.INT())
    by_schema = JsonRowDeserializationSchema.builder().json_schema(
        '{"type": "object", "properties": {"id": {"type": "integer"}, "day": {"type": "string", "format": "date"}}}'
    ).build()
    assert by_schema.deserialize(b'{"id": 7, "day": "2024-02-29"}').as_dict() == \
        {"id": 7, "day": datetime.date(2024, 2, 29)}


def test_csv_rows_round_trip_with_quotes_arrays_and_nulls() -> None:
    row_type = Types.ROW_NAMED(["id", "text", "scores", "ok"],
                               [Types.LONG(), Types.STRING(), Types.OBJECT_ARRAY(Types.INT()), Types.BOOLEAN()])
    out = CsvRowSerializationSchema.Builder(row_type).set_field_delimiter(";").set_array_element_delimiter("|") \
        .set_null_literal("NULL").build()
    data = out.serialize(Row(1, "a;b", [1, 2], None))
    assert data == b'1;"a;b";1|2;NULL\n'
    parse = CsvRowDeserializationSchema.Builder(row_type).set_field_delimiter(";") \
        .set_array_element_delimiter("|").set_null_literal("NULL").build()
    assert parse.deserialize(data).as_dict() == {"id": 1, "text": "a;b", "scores": [1, 2], "ok": None}
    with pytest.raises(ValueError, match="Failed to deserialize CSV row"):
        parse.deserialize(b"x;y;1;true")
    assert CsvRowDeserializationSchema.Builder(row_type).set_ignore_parse_errors(True).build() \
        .deserialize(b"x,y,1,true") is None
    commented = CsvRowDeserializationSchema.Builder(row_type).set_allow_comments(True).build()
    assert commented.deserialize(b"# a comment") is None
    with pytest.raises(ValueError, match="single character"):
        CsvRowSerializationSchema.Builder(row_type).set_field_delimiter(";;")
