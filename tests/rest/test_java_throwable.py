"""An operation's failure-cause as Flink's Java client reads it: Flink's own REST mapper and
SerializedThrowable (from Flink 2.3's jar) decode our JSON and give back the JobManager's message."""

from __future__ import annotations

import json
import subprocess

import pytest

from ha_flink.rest.java_throwable import failure_cause
from ha_flink.testing.flink_dist import java_against_flink
from ha_flink.testing.pyflink_wheel import PyFlinkUnavailable

# Reads one operation JSON per line with Flink's RestMapperUtils (the client's ObjectMapper) into Flink's
# AsynchronousOperationInfo, whose failure-cause is a SerializedThrowable, and prints what the CLI would show.
JUDGE = r"""
import org.apache.flink.runtime.rest.handler.async.AsynchronousOperationInfo;
import org.apache.flink.runtime.rest.util.RestMapperUtils;
import org.apache.flink.util.SerializedThrowable;

public class Throwables {
    public static void main(String[] args) throws Exception {
        java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in, "UTF-8"));
        java.io.PrintStream out = new java.io.PrintStream(System.out, true, "UTF-8");
        String line;
        while ((line = in.readLine()) != null) {
            SerializedThrowable t = RestMapperUtils.getStrictObjectMapper()
                    .readValue(line, AsynchronousOperationInfo.class).getFailureCause();
            Throwable error = t.deserializeError(Throwables.class.getClassLoader());
            out.println(t.getOriginalErrorClassName() + "\t" + error.toString().replace("\n", "\\n") + "\t"
                    + t.getFullStringifiedStackTrace().replace("\n", "\\n") + "\t" + (t.getCause() == null));
        }
    }
}
"""


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    try:
        return java_against_flink(JUDGE, "Throwables", tmp_path_factory.mktemp("judge"))
    except PyFlinkUnavailable as error:
        pytest.skip(f"Flink's SerializedThrowable judge cannot run here: {error}")


def test_flinks_client_reads_our_failure_cause_with_its_message(judge: list[str]) -> None:
    errors = [RuntimeError("savepoint 3 not written: /data is read-only"),
              ValueError("naïve 日本語 😀 and a NUL \x00 byte"),
              RuntimeError("a long one " + "x" * 70_000),  # (past 65535 bytes: a TC_LONGSTRING)
              RuntimeError("two\nlines")]
    lines = "\n".join(json.dumps({"failure-cause": failure_cause(error)}) for error in errors) + "\n"
    done = subprocess.run(judge, input=lines.encode(), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    read = [line.split("\t") for line in done.stdout.decode().splitlines()]
    assert len(read) == len(errors)
    for error, (class_name, shown, stack_trace, no_cause) in zip(errors, read):
        message = f"{type(error).__name__}: {error}".replace("\n", "\\n")
        assert class_name == "org.apache.flink.util.FlinkException"
        assert shown == f"org.apache.flink.util.FlinkException: {message}"
        assert stack_trace == shown and no_cause == "true"
