"""Keys land in the key group Flink's JVM gives them (judged by Flink's own KeyGroupRangeAssignment, run on
the jar of the Flink 2.3 distribution), equal keys in one group, and a job restored from state written with
ha-flink 0.1's hash keeps that hash (else half its keys would find no state at parallelism 2)."""

from __future__ import annotations

import math
import pickle
import struct
import subprocess
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from ha_flink.common import Row, Types, WatermarkStrategy
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.fs import Storage
from ha_flink.runtime.key_groups import KeyHash, assign_to_key_group, key_group_assigner
from ha_flink.testing.flink_dist import java_against_flink
from ha_flink.testing.functions import CountPerKey, stop_with_savepoint_once_running
from ha_flink.testing.processes import wait_for
from ha_flink.testing.pyflink_wheel import PyFlinkUnavailable
from ha_flink.testing.sinks import CollectSink, read_collected

# Flink's own code decides: Row.of(<the key as PyFlink hands it to the JVM>) through KeyGroupRangeAssignment
JUDGE = r"""
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.apache.flink.api.java.tuple.Tuple;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.types.Row;

public class KeyGroups {
    static Object field(String token) {
        String value = token.substring(2);
        switch (token.charAt(0)) {
            case 'S': return new String(HexFormat.of().parseHex(value), StandardCharsets.UTF_8);
            case 'Y': return HexFormat.of().parseHex(value);
            case 'I': return Integer.parseInt(value);
            case 'L': return Long.parseLong(value);
            case 'H': return Short.parseShort(value);
            case 'B': return Byte.parseByte(value);
            case 'C': return (char) Integer.parseInt(value);
            case 'Z': return Boolean.parseBoolean(value);
            case 'D': return Double.longBitsToDouble(Long.parseUnsignedLong(value, 16));
            case 'F': return Float.intBitsToFloat(Integer.parseUnsignedInt(value, 16));
            case 'N': return null;
            default: throw new IllegalArgumentException(token);
        }
    }

    public static void main(String[] args) throws Exception {
        java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] tokens = line.split(" ");
            Object key;
            if (tokens[0].equals("row")) {
                Object[] fields = new Object[tokens.length - 1];
                for (int i = 1; i < tokens.length; i++) fields[i - 1] = field(tokens[i]);
                key = Row.of(fields);
            } else if (tokens[0].equals("tuple")) {
                Tuple tuple = Tuple.newInstance(tokens.length - 1);
                for (int i = 1; i < tokens.length; i++) tuple.setField(field(tokens[i]), i - 1);
                key = tuple;
            } else {
                key = field(tokens[1]);
            }
            Row keyRow = Row.of(key);
            System.out.println(KeyGroupRangeAssignment.assignToKeyGroup(keyRow, 128) + " "
                    + KeyGroupRangeAssignment.assignToKeyGroup(keyRow, 32768));
        }
    }
}
"""


def _token(kind: str, value: Any) -> str:
    if value is None:
        return "N:"
    if kind == "S":
        return f"S:{value.encode('utf-8', 'surrogatepass').hex()}"
    if kind == "Y":
        return f"Y:{bytes(value).hex()}"
    if kind == "D":
        return f"D:{struct.pack('>d', value).hex()}"
    if kind == "F":
        return f"F:{struct.pack('>f', value).hex()}"
    if kind == "C":
        return f"C:{ord(value)}"
    if kind == "Z":
        return f"Z:{'true' if value else 'false'}"
    return f"{kind}:{value}"


_KIND = {"STRING": "S", "INT": "I", "LONG": "L", "SHORT": "H", "BYTE": "B", "CHAR": "C", "BOOLEAN": "Z",
         "DOUBLE": "D", "FLOAT": "F"}


def _cases() -> list[tuple[Any, Any, str]]:
    """(key, key_type, the judge's input line) for keys of every hashed type."""
    cases: list[tuple[Any, Any, str]] = []
    pickled = ["Alice", "Bob", "", "héllo wörld", "😀 non-BMP", "x" * 300, 0, 1, -1, 7, 2 ** 31, -2 ** 63, 2 ** 70,
               1.5, -0.0, float("inf"), True, False, None, b"raw", ("a", 1), ("word", 2, 3.5), ("ab", "cd"), (1, None)]
    pickled += [f"word-{i}" for i in range(150)] + list(range(1000, 1150))
    for key in pickled:  # (a None field is null to the JVM: PyFlink's row coder does not pickle it)
        cases.append((key, None, "single N:" if key is None else f"single {_token('Y', cloudpickle.dumps(key))}"))
    typed: dict[str, list[Any]] = {
        "STRING": ["Alice", "", "é", "😀", "日本語", "a b c"] + [f"k{i}" for i in range(60)],
        "INT": [0, 1, -1, 2 ** 31 - 1, -2 ** 31, 12345] + list(range(-30, 30)),
        "LONG": [0, -1, 2 ** 40, -2 ** 63, 2 ** 63 - 1, 99],
        "SHORT": [0, -1, 32767, -32768, 5], "BYTE": [0, -1, 127, -128, 3],
        "CHAR": ["a", "Z", "é"], "BOOLEAN": [True, False],
        "DOUBLE": [0.0, -0.0, 1.5, -2.25, float("inf"), float("nan"), 1e300],
        "FLOAT": [0.0, 1.5, -2.25, 163.3, float("inf")],
    }
    for name, keys in typed.items():
        key_type = getattr(Types, name)()
        for key in keys:
            cases.append((key, key_type, f"single {_token(_KIND[name], key)}"))
    for data in (b"", b"\x00\xff\x80abc", bytes(range(256))):
        cases.append((data, Types.PRIMITIVE_ARRAY(Types.BYTE()), f"single {_token('Y', data)}"))
    row_type = Types.ROW([Types.STRING(), Types.INT(), Types.DOUBLE()])
    for key in (Row("a", 1, 2.5), Row("héllo", -7, -0.0), Row(None, 3, 1.0), Row("x", None, None)):
        tokens = " ".join(_token(k, v) for k, v in zip("SID", key))
        cases.append((key, row_type, f"row {tokens}"))
    tuple_type = Types.TUPLE([Types.STRING(), Types.LONG()])
    for key in (("a", 1), ("word", -2 ** 40), ("", 0)):
        cases.append((key, tuple_type, f"tuple {_token('S', key[0])} {_token('L', key[1])}"))
    return cases


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    try:
        return java_against_flink(JUDGE, "KeyGroups", tmp_path_factory.mktemp("judge"))
    except PyFlinkUnavailable as error:
        pytest.skip(f"Flink's key group judge cannot run here: {error}")


def test_every_key_type_lands_in_the_key_group_flinks_jvm_gives_it(judge: list[str]) -> None:
    cases = _cases()
    done = subprocess.run(judge, input="\n".join(c[2] for c in cases) + "\n",
                          capture_output=True, text=True, timeout=120, check=True)
    flink = [tuple(map(int, line.split())) for line in done.stdout.splitlines()]
    assert len(flink) == len(cases)
    wrong = [(key, key_type, expected, (assign_to_key_group(key, 128, key_type), assign_to_key_group(key, 32768, key_type)))
             for (key, key_type, _), expected in zip(cases, flink)
             if (assign_to_key_group(key, 128, key_type), assign_to_key_group(key, 32768, key_type)) != expected]
    assert not wrong, f"{len(wrong)} of {len(cases)} keys differ from Flink's (key, type, Flink's, ours): {wrong[:5]}"


def test_equal_keys_share_a_group_whatever_their_objects() -> None:
    text = "ab" * 3
    built = "".join(["ab"] * 3)
    assert text is not built
    for key_hash in KeyHash:
        group_of = key_group_assigner(key_hash, None, 128)
        assert group_of((text, text)) == group_of((built, "".join(["ab"] * 3))) == group_of(("ababab", "ababab"))
        assert group_of((1, (text, text))) == group_of((1, (built, text)))


def test_a_key_of_another_type_than_declared_is_named() -> None:
    with pytest.raises(TypeError, match=r"key field 'seven' \(str\) is not of the key type Integer"):
        assign_to_key_group("seven", 128, Types.INT())


def test_flinks_hash_is_cached_per_key_without_confusing_equal_values_of_other_types() -> None:
    group_of = key_group_assigner(KeyHash.FLINK, None, 128)
    # 1, True and 1.0 are equal in Python but pickle apart (in PyFlink too): each keeps its own group
    expected = {key: assign_to_key_group(key, 128) for key in (1, True, 1.0)}
    for _ in range(2):
        assert {key: group_of(key) for key in (1, True, 1.0)} == expected
    assert math.isfinite(group_of(2.5))



def _drop_key_hash(savepoint: str) -> None:
    """Make the savepoint one that ha-flink 0.1 wrote: its _metadata records no key hash."""
    storage, url = Storage(), savepoint.rstrip("/") + "/_metadata"
    metadata = pickle.loads(storage.read_sealed(url))
    assert metadata.pop("key_hash") == KeyHash.HA_FLINK_1.value
    storage.delete(url)  # (files are written once)
    storage.write_sealed(url, pickle.dumps(metadata, protocol=5))


def test_a_savepoint_written_with_ha_flink_0_1s_hash_restores_every_keys_state(tmp_path: Path) -> None:
    from ha_flink.datastream import JobClient
    from ha_flink.rest.server import start_rest_endpoint
    from ha_flink.runtime.minicluster import LocalJobClient

    keys = 40
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.enable_checkpointing(200)
    env.from_source(RateLimitedNumberSequenceSource(), WatermarkStrategy.no_watermarks(), "numbers").uid("numbers") \
        .key_by(lambda n: n % keys).process(CountPerKey()).uid("count").add_sink(CollectSink(tmp_path / "before"))
    graph = env._take_local_job_graph("before")
    graph.key_hash = KeyHash.HA_FLINK_1.value  # as ha-flink 0.1 built every job
    client = JobClient(LocalJobClient(graph, start_rest_endpoint))
    try:
        wait_for(lambda: len(read_collected(tmp_path / "before")) > 4 * keys, 30, what="every key counted a few times")
        savepoint = stop_with_savepoint_once_running(client, str(tmp_path / "savepoints"))
        client.get_job_execution_result().result(60)
    finally:
        client.cancel()
        client.get_job_execution_result().exception(30)
    _drop_key_hash(savepoint)
    emitted = {tuple(record) for record in read_collected(tmp_path / "before")}

    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.configure({"execution.state-recovery.path": savepoint, "execution.state-recovery.ignore-unclaimed-state": "true"})
    env.from_collection(list(range(keys))).uid("once").key_by(lambda n: n % keys).process(CountPerKey()).uid("count") \
        .add_sink(CollectSink(tmp_path / "after"))
    env.execute("after")
    after = dict(read_collected(tmp_path / "after"))
    assert sorted(after) == list(range(keys))
    # every key goes on from a count the first job had reached (a key routed by another hash than its state
    # was written with finds none: its count starts over at 1)
    restored = {key: count - 1 for key, count in after.items()}
    assert all(count > 0 and (key, count) in emitted for key, count in restored.items()), restored
