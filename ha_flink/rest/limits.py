"""`rest.server.max-content-length` (Flink's key, default 100 MiB): a request body over the limit is
answered 413 before it is read.

An ASGI wrapper around the REST app, outermost, so it also guards what a standby would forward. A request
that declares a `Content-Length` over the limit gets its 413 at once, with nothing of its body read; one
without a length (chunked) is counted as it arrives and refused as soon as it passes the limit. Either way
the JobManager holds at most `max-content-length` bytes of one body."""

from __future__ import annotations

import json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_CONTENT_LENGTH_KEY = "rest.server.max-content-length"



def _too_large(limit: int, what: str) -> str:
    return f"the request body is {what}, over the limit of {limit} bytes ({MAX_CONTENT_LENGTH_KEY})"


class ContentLengthLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _answer(send, 400, f"Content-Length {declared.decode(errors='replace')!r} is not a number")
                return
            if length > self.max_bytes:
                await _answer(send, 413, _too_large(self.max_bytes, f"{length} bytes"))
                return
            await self.app(scope, receive, send)
            return
        # No length declared (chunked): take the body here, up to the limit, and hand it on whole. (Raising
        # from `receive` instead would reach the app's middleware as an ExceptionGroup and end as a 500.)
        chunks, received = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away
            body = message.get("body", b"")
            received += len(body)
            if received > self.max_bytes:
                await _answer(send, 413, _too_large(self.max_bytes, f"more than {self.max_bytes} bytes"))
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return whole.pop() if whole else await receive()

        await self.app(scope, replay, send)


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"errors": [message]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
