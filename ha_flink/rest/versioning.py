"""Flink's versioned REST paths: every path is served both bare and under `/v1/` (Flink's RestAPIVersion
V1, the one version a Flink 2.x endpoint has), as Flink's own client, the Kubernetes operator and
generated SDKs call `/v1/...`.

An ASGI wrapper around the REST app that strips the prefix before routing, so one route answers both, and
a standby forwards the bare path to the leader. The dashboard's own files are not versioned (as Flink's)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

VERSION_PREFIX = "/v1"


class VersionedPaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(VERSION_PREFIX + "/") or path == VERSION_PREFIX:
                bare = path[len(VERSION_PREFIX):] or "/"
                scope = dict(scope, path=bare)
                raw = scope.get("raw_path")
                if raw is not None and raw.startswith(VERSION_PREFIX.encode()):
                    scope["raw_path"] = raw[len(VERSION_PREFIX):] or b"/"
        await self.app(scope, receive, send)
