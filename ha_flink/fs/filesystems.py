"""From a storage URL to an fsspec filesystem and path, with Flink's `s3.*` keys applied.

`file://` and bare paths are local files, `s3://` (also Flink's `s3a://`, `s3p://`) is s3fs, `hdfs://` is
pyarrow's HadoopFileSystem through fsspec. Anything else is refused with the accepted schemes named."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import fsspec
from fsspec import AbstractFileSystem

from ha_flink.config import Configuration, S3Options
from ha_flink.fs.errors import StorageError

S3_SCHEMES = ("s3", "s3a", "s3p")
ACCEPTED_SCHEMES = "file:// (or a bare path), s3://, hdfs://"


def scheme_of(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    # A Windows-style drive letter is not a scheme; neither is an empty one.
    return "file" if len(scheme) <= 1 else scheme


def filesystem_for(url: str, config: Configuration | None = None) -> tuple[AbstractFileSystem, str]:
    """The filesystem that holds `url` and the path of `url` inside it."""
    config = config or Configuration()
    scheme = scheme_of(url)
    if scheme == "file":
        path = urlsplit(url).path if url.startswith("file:") else url
        return fsspec.filesystem("file"), os.path.abspath(path)
    if scheme in S3_SCHEMES:
        parts = urlsplit(url)
        if not parts.netloc:
            raise StorageError("resolve", url, "an s3 URL needs a bucket: s3://<bucket>/<path>")
        return _s3_filesystem(config), f"{parts.netloc}{parts.path}".rstrip("/")
    if scheme == "hdfs":
        parts = urlsplit(url)
        try:
            fs = fsspec.filesystem("hdfs", host=parts.hostname or "default", port=parts.port or 0)
        except Exception as exc:  # pyarrow raises OSError or ImportError-like errors without libhdfs
            raise StorageError(
                "connect", url, f"{exc} (HDFS needs Hadoop's libhdfs, JAVA_HOME and CLASSPATH set on this host)"
            ) from exc
        return fs, parts.path or "/"
    raise StorageError("resolve", url, f"unsupported scheme {scheme!r}; accepted: {ACCEPTED_SCHEMES}")


def _s3_filesystem(config: Configuration) -> AbstractFileSystem:
    options: dict[str, object] = {
        # Other processes write the same buckets: a cached listing would hide their writes.
        "use_listings_cache": False,
    }
    key, secret = config.get(S3Options.ACCESS_KEY), config.get(S3Options.SECRET_KEY)
    if key is not None or secret is not None:
        options.update(key=key, secret=secret)
    endpoint = config.get(S3Options.ENDPOINT)
    if endpoint:
        options["endpoint_url"] = endpoint
    if config.get(S3Options.PATH_STYLE_ACCESS):
        options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    return fsspec.filesystem("s3", **options)
