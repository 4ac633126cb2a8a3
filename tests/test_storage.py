"""Storage round trips on local files and on a real S3 server (moto, its own process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ha_flink.fs import Storage, StorageError, StorageFileExistsError, StorageFileNotFoundError, filesystem_for
from ha_flink.testing.s3 import MotoS3Server


@pytest.fixture(params=["file-url", "bare-path", "s3"])
def storage_root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Storage, str]:
    if request.param == "file-url":
        return Storage(), f"file://{tmp_path}/root"
    if request.param == "bare-path":
        return Storage(), str(tmp_path / "root")
    server: MotoS3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return Storage(server.configuration()), f"{bucket}/root"


def test_write_read_list_delete_round_trip(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    storage.write(f"{root}/ha/submittedJobGraph1", b"graph-1")
    storage.write(f"{root}/ha/submittedJobGraph2", b"graph-2" * 10_000)
    storage.write(f"{root}/ha/sub/nested", b"n")
    assert storage.read(f"{root}/ha/submittedJobGraph1") == b"graph-1"
    assert storage.read(f"{root}/ha/submittedJobGraph2") == b"graph-2" * 10_000
    assert storage.list(f"{root}/ha") == [f"{root}/ha/sub", f"{root}/ha/submittedJobGraph1",
                                          f"{root}/ha/submittedJobGraph2"]
    assert storage.exists(f"{root}/ha/sub/nested")
    storage.delete(f"{root}/ha/submittedJobGraph1")
    assert not storage.exists(f"{root}/ha/submittedJobGraph1")
    storage.delete(f"{root}/ha")
    assert not storage.exists(f"{root}/ha/sub/nested")
    assert storage.list(f"{root}/ha") == []
    storage.delete(f"{root}/ha")  # deleting what is gone is fine: cleanup can be repeated


def test_write_once_never_overwrites(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    storage.write(f"{root}/once", b"first")
    with pytest.raises(StorageFileExistsError, match=f"cannot write {root}/once: it exists already"):
        storage.write(f"{root}/once", b"second")
    assert storage.read(f"{root}/once") == b"first"
    storage.write(f"{root}/once", b"third", overwrite=True)
    assert storage.read(f"{root}/once") == b"third"


def test_unique_names_are_fresh(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    urls = {storage.write_unique(f"{root}/ha", "completedCheckpoint", str(i).encode()) for i in range(5)}
    assert len(urls) == 5
    assert all(url.startswith(f"{root}/ha/completedCheckpoint") and len(url.rsplit("/", 1)[1]) == 19 + 32
               for url in urls)
    assert sorted(storage.list(f"{root}/ha")) == sorted(urls)


def test_missing_file_error_names_url_and_operation(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    with pytest.raises(StorageFileNotFoundError, match=f"^cannot read {root}/missing: no such file"):
        storage.read(f"{root}/missing")


def test_local_write_leaves_no_temp_files(tmp_path: Path) -> None:
    storage = Storage()
    storage.write(str(tmp_path / "a"), b"x")
    with pytest.raises(StorageFileExistsError):
        storage.write(str(tmp_path / "a"), b"y")
    assert os.listdir(tmp_path) == ["a"]


def test_local_write_error_names_url(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StorageError, match=f"^cannot write {tmp_path}/file/child: "):
        Storage().write(f"{tmp_path}/file/child", b"x")


def test_flinks_s3_keys_configure_the_client(s3_server: MotoS3Server, s3_bucket: str) -> None:
    fs, path = filesystem_for(f"{s3_bucket}/k", s3_server.configuration())
    assert path == f"{s3_bucket.removeprefix('s3://')}/k"
    assert fs.endpoint_url == s3_server.endpoint
    assert (fs.key, fs.secret) == ("testing-access-key", "testing-secret-key")
    assert fs.config_kwargs == {"s3": {"addressing_style": "path"}}
    # and the client so configured talks to the moto process
    fs.pipe_file(path, b"v")
    assert fs.cat_file(path) == b"v"


def test_s3a_scheme_is_accepted(s3_server: MotoS3Server, s3_bucket: str) -> None:
    storage = Storage(s3_server.configuration())
    storage.write(f"{s3_bucket}/x", b"1")
    assert storage.read(s3_bucket.replace("s3://", "s3a://") + "/x") == b"1"


def test_missing_s3_bucket_is_named(s3_server: MotoS3Server) -> None:
    with pytest.raises(StorageError, match="^cannot write s3://no-such-bucket-here/x: "):
        Storage(s3_server.configuration()).write("s3://no-such-bucket-here/x", b"1")


@pytest.mark.parametrize(("url", "fragment"), [
    ("gs://bucket/x", "unsupported scheme 'gs'; accepted: file:// (or a bare path), s3://, hdfs://"),
    ("s3:///x", "an s3 URL needs a bucket: s3://<bucket>/<path>"),
])
def test_unusable_urls_are_refused_with_the_reason(url: str, fragment: str) -> None:
    with pytest.raises(StorageError) as error:
        Storage().read(url)
    assert str(error.value) == f"cannot resolve {url}: {fragment}"


def test_hdfs_without_hadoop_says_what_is_missing() -> None:
    if os.environ.get("HADOOP_HOME") or os.environ.get("ARROW_LIBHDFS_DIR"):
        pytest.skip("a Hadoop installation exists here; this test covers hosts without one")
    with pytest.raises(StorageError, match="^cannot connect hdfs://namenode:8020/flink/ha: .*libhdfs"):
        Storage().exists("hdfs://namenode:8020/flink/ha")
