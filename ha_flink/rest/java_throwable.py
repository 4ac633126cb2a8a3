"""A failure in Flink's JSON form (`SerializedThrowable`: class, stack-trace, serialized-throwable), for the
failure-cause of an asynchronous operation (savepoint, stop, checkpoint, disposal).

Flink's Java client reads only `serialized-throwable`: the Java serialization (ObjectOutputStream, base64 in
the JSON) of an `org.apache.flink.util.SerializedThrowable`. Without it the client throws while reading the
answer and polls on until its timeout; with it, `flink savepoint` fails at once with the JobManager's message.
The stream is written here by the rules of the Java Object Serialization Specification, for the one
object it holds: a SerializedThrowable with the original class name, message and stack trace, no cause, no
stack frames, and no serialized original (so `deserializeError` hands back the SerializedThrowable itself,
whose toString is "<class>: <message>"). Flink's own classes judge it (tests/rest/test_java_throwable.py)."""

from __future__ import annotations

import base64
import struct
from typing import Any

_STREAM_MAGIC, _STREAM_VERSION = 0xACED, 5
_TC_NULL, _TC_CLASSDESC, _TC_OBJECT, _TC_STRING, _TC_ENDBLOCKDATA, _TC_LONGSTRING = 0x70, 0x72, 0x73, 0x74, 0x78, 0x7C
_SC_WRITE_METHOD, _SC_SERIALIZABLE = 0x01, 0x02

# (class name, serialVersionUID, flags, fields as (type code, name, JVM type)), superclass after subclass;
# the UIDs are those `serialver` prints for Flink 2.3's jar and the JDK's classes. Fields are in Java's
# order: primitives first, then by name.
_CLASSES = (
    ("org.apache.flink.util.SerializedThrowable", 7284183123441947635, _SC_SERIALIZABLE,
     (("L", "fullStringifiedStackTrace", "Ljava/lang/String;"),
      ("L", "originalErrorClassName", "Ljava/lang/String;"),
      ("[", "serializedException", "[B"))),
    ("java.lang.Exception", -3387516993124229948, _SC_SERIALIZABLE, ()),
    ("java.lang.Throwable", -3042686055658047285, _SC_SERIALIZABLE | _SC_WRITE_METHOD,
     (("L", "cause", "Ljava/lang/Throwable;"),
      ("L", "detailMessage", "Ljava/lang/String;"),
      ("[", "stackTrace", "[Ljava/lang/StackTraceElement;"),
      ("L", "suppressedExceptions", "Ljava/util/List;"))),
)


def _modified_utf8(text: str) -> bytes:
    """Java's DataOutput.writeUTF encoding: UTF-16 code units, NUL as two bytes, each surrogate as three."""
    out = bytearray()
    units = memoryview(text.encode("utf-16-le", "surrogatepass")).cast("H")
    for unit in units:
        if 0 < unit < 0x80:
            out.append(unit)
        elif unit < 0x800:
            out += bytes((0xC0 | unit >> 6, 0x80 | unit & 0x3F))
        else:
            out += bytes((0xE0 | unit >> 12, 0x80 | unit >> 6 & 0x3F, 0x80 | unit & 0x3F))
    return bytes(out)


def _utf(text: str) -> bytes:
    data = _modified_utf8(text)
    if len(data) > 0xFFFF:
        raise ValueError(f"a class or field name of {len(data)} bytes")
    return struct.pack(">H", len(data)) + data


def _string(text: str) -> bytes:
    data = _modified_utf8(text)
    if len(data) <= 0xFFFF:
        return bytes((_TC_STRING,)) + struct.pack(">H", len(data)) + data
    return bytes((_TC_LONGSTRING,)) + struct.pack(">Q", len(data)) + data


def _class_descriptors() -> bytes:
    out = bytearray()
    for name, uid, flags, fields in _CLASSES:
        out += bytes((_TC_CLASSDESC,)) + _utf(name) + struct.pack(">qBH", uid, flags, len(fields))
        for code, field_name, jvm_type in fields:
            out += code.encode() + _utf(field_name) + _string(jvm_type)
        out.append(_TC_ENDBLOCKDATA)  # (no class annotation); the superclass's descriptor follows
    out.append(_TC_NULL)  # Throwable's superclass (Object) is not serializable
    return bytes(out)


def serialized_throwable(class_name: str, message: str, stack_trace: str) -> bytes:
    """ObjectOutputStream's bytes of a SerializedThrowable of `class_name` with `message`."""
    out = bytearray(struct.pack(">HH", _STREAM_MAGIC, _STREAM_VERSION))
    out.append(_TC_OBJECT)
    out += _class_descriptors()
    # class data, superclass first. Throwable (its writeObject): cause, detailMessage, stackTrace,
    # suppressedExceptions, then the end of its block data. null cause/stack/suppressed read back as none.
    out += bytes((_TC_NULL,)) + _string(message) + bytes((_TC_NULL, _TC_NULL, _TC_ENDBLOCKDATA))
    # Exception: no fields. SerializedThrowable: its three fields, no serialized original.
    out += _string(stack_trace) + _string(class_name) + bytes((_TC_NULL,))
    return bytes(out)


def failure_cause(error: BaseException, java_class: str = "org.apache.flink.util.FlinkException") -> dict[str, Any]:
    """Flink's JSON of a SerializedThrowable for `error`, as an operation's `failure-cause`. `java_class` is
    what Flink's client names as the error's class (ours are Python's: the Python class leads the message)."""
    message = f"{type(error).__name__}: {error}"
    stack_trace = f"{java_class}: {message}"
    return {"class": java_class, "stack-trace": stack_trace,
            "serialized-throwable": base64.b64encode(serialized_throwable(java_class, message, stack_trace)).decode()}
