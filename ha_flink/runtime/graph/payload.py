"""The shape check of a submitted job graph, made before anything of it is unpickled.

A job graph is a cloudpickle of `JobGraph`, and unpickling runs code by design: the user's functions are
in it. So it is unpickled only from a peer that passed TLS authentication (when security.ssl.* is on),
within the size limit, and only if its bytes have the shape of a JobGraph pickle: a well-formed pickle
stream (protocol 4 or 5, every opcode valid, nothing after STOP) whose outermost object is built from
`ha_flink.runtime.graph.job_graph.JobGraph`. `pickletools.genops` reads the opcodes without running them.
This refuses garbage, truncated uploads and a pickle crafted to run a command as its top-level object
with a named error; it is not a sandbox for a job graph's contents, which are code."""

from __future__ import annotations

import pickletools

from ha_flink.runtime.graph.job_graph import JobGraph

_EXPECTED = (JobGraph.__module__, JobGraph.__qualname__)
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}


class JobGraphPayloadError(ValueError):
    """Bytes that are not a pickled JobGraph; the message says what was found instead."""


def check_job_graph_payload(data: bytes) -> None:
    if not data:
        raise JobGraphPayloadError("the request body is empty")
    names: list[str] = []
    first_global: tuple[str, str] | None = None
    end = -1
    try:
        for index, (op, arg, position) in enumerate(pickletools.genops(data)):
            if index == 0 and (op.name != "PROTO" or not isinstance(arg, int) or arg < 4):
                raise JobGraphPayloadError(f"not a pickle of protocol 4 or 5 (starts with {op.name})")
            if first_global is None:
                if op.name in _STRINGS:
                    names.append(str(arg))
                elif op.name == "STACK_GLOBAL":
                    first_global = (names[-2], names[-1]) if len(names) >= 2 else ("?", "?")
                    if first_global != _EXPECTED:
                        raise JobGraphPayloadError(
                            f"the pickle's outermost object is built from {first_global[0]}.{first_global[1]}, "
                            f"not from {_EXPECTED[0]}.{_EXPECTED[1]}")
                elif op.name in ("GLOBAL", "INST", "REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX", "OBJ", "STOP"):
                    raise JobGraphPayloadError(f"the pickle's outermost object is not a job graph ({op.name} "
                                               "before any class reference)")
            end = position or 0
    except ValueError as error:
        if isinstance(error, JobGraphPayloadError):
            raise
        raise JobGraphPayloadError(f"not a well-formed pickle: {error}") from None
    if end + 1 != len(data):
        raise JobGraphPayloadError(f"{len(data) - end - 1} bytes follow the end of the pickle")
