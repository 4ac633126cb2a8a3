"""Duration / Time conversions and the bytes the string encoder and schema produce."""

from __future__ import annotations

import pytest

from ha_flink.common import Duration, Encoder, Instant, SimpleStringSchema, Time


def test_duration_factories_and_conversions() -> None:
    assert Duration.of_millis(1500).to_milliseconds() == 1500
    assert Duration.of_seconds(2).to_milliseconds() == 2000
    assert Duration.of_minutes(1) == Duration.of_seconds(60)
    assert Duration.of_hours(1).to_seconds() == 3600
    assert Duration.of_days(1).to_milliseconds() == 86_400_000
    assert Duration.of_nanos(1_500_000).to_milliseconds() == 1
    assert Duration.of_millis(3).to_nanos() == 3_000_000
    assert Duration.of_nanos(-1).to_milliseconds() == -1  # floors, as java.time.Duration.toMillis
    assert Duration.of_seconds(1) < Duration.of_seconds(2)


def test_time_factories_and_equality() -> None:
    assert Time.milliseconds(5).to_milliseconds() == 5
    assert Time.seconds(2).to_milliseconds() == 2000
    assert Time.minutes(1) == Time.seconds(60)
    assert Time.hours(1).to_milliseconds() == 3_600_000
    assert Time.days(1).to_milliseconds() == 86_400_000
    assert hash(Time.seconds(1)) == hash(Time.milliseconds(1000))
    assert str(Time.seconds(1)) == "1000 ms"


def test_instant_round_trips_epoch_millis() -> None:
    assert Instant.of_epoch_milli(1500) == Instant(1, 500_000_000)
    assert Instant.of_epoch_milli(-1).to_epoch_milli() == -1


def test_simple_string_encoder_writes_str_then_newline() -> None:
    encoder = Encoder.simple_string_encoder()
    assert encoder.encode("hello") == b"hello\n"
    assert encoder.encode(42) == b"42\n"
    assert encoder.encode("é") == "é\n".encode("utf-8")
    assert Encoder.simple_string_encoder("UTF-16-LE").encode("a") == "a\n".encode("utf-16-le")
    with pytest.raises(LookupError):
        Encoder.simple_string_encoder("no-such-charset")


def test_simple_string_schema_round_trip() -> None:
    schema = SimpleStringSchema()
    assert schema.serialize("héllo") == "héllo".encode("utf-8")
    assert schema.deserialize(schema.serialize("héllo")) == "héllo"
    assert SimpleStringSchema("latin-1").serialize("é") == b"\xe9"
