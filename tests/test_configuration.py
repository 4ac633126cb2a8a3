from __future__ import annotations

import logging
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from ha_flink.config import (
    CheckpointingOptions,
    Configuration,
    ConfigurationError,
    CoreOptions,
    DeploymentOptions,
    HeartbeatManagerOptions,
    HighAvailabilityOptions,
    JobManagerOptions,
    RestartStrategyOptions,
    RestOptions,
    S3Options,
    StateBackendOptions,
    TaskManagerOptions,
    install_dir,
    load_configuration,
)


def write_conf(directory: Path, text: str, name: str = "flink-conf.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


FLAT = """
    # A Flink 1 style file
    jobmanager.rpc.address: node-1
    jobmanager.rpc.port: 6130
    rest.port: 8082
    taskmanager.numberOfTaskSlots: 4
    parallelism.default: 2
    high-availability: zookeeper
    high-availability.zookeeper.quorum: zk1:2181,zk2:2181,zk3:2181
    high-availability.zookeeper.path.root: /flink-prod
    high-availability.cluster-id: /cluster-a
    high-availability.storageDir: s3://bucket/ha
    high-availability.zookeeper.client.session-timeout: 3 s
    high-availability.zookeeper.client.tolerate-suspended-connections: true
    high-availability.zookeeper.client.acl: creator
    state.backend: hashmap
    state.checkpoints.dir: file:///var/flink/checkpoints
    state.checkpoints.num-retained: 3
    execution.checkpointing.interval: 1 min
    restart-strategy: fixed-delay
    restart-strategy.fixed-delay.attempts: 10
    restart-strategy.fixed-delay.delay: 500 ms
    jobmanager.execution.failover-strategy: full
    heartbeat.interval: 1000
    heartbeat.timeout: 5 s
    env.pid.dir: /var/run/flink
    io.tmp.dirs: /tmp/a,/tmp/b|/tmp/c
    s3.path.style.access: true
    taskmanager.memory.process.size: 1728m
    """

NESTED = """
    jobmanager:
      rpc:
        address: node-1
        port: 6130
      execution:
        failover-strategy: full
    rest:
      port: 8082
    taskmanager:
      numberOfTaskSlots: 4
      memory:
        process:
          size: 1728m
    parallelism:
      default: 2
    high-availability:
      type: zookeeper
      zookeeper:
        quorum: zk1:2181,zk2:2181,zk3:2181
        path:
          root: /flink-prod
        client:
          session-timeout: 3 s
          tolerate-suspended-connections: true
          acl: creator
      cluster-id: /cluster-a
      storageDir: s3://bucket/ha
    state:
      backend:
        type: hashmap
      checkpoints:
        dir: file:///var/flink/checkpoints
        num-retained: 3
    execution:
      checkpointing:
        interval: 1 min
    restart-strategy:
      type: fixed-delay
      fixed-delay:
        attempts: 10
        delay: 500 ms
    heartbeat:
      interval: 1000
      timeout: 5 s
    env:
      pid:
        dir: /var/run/flink
    io:
      tmp:
        dirs: [/tmp/a, /tmp/b, /tmp/c]
    s3:
      path:
        style:
          access: true
    """


@pytest.mark.parametrize("text", [FLAT, NESTED], ids=["flat", "nested"])
def test_flat_and_nested_files_give_the_same_typed_values(tmp_path: Path, text: str) -> None:
    write_conf(tmp_path, text)
    config = load_configuration(tmp_path)
    assert config.get(JobManagerOptions.RPC_ADDRESS) == "node-1"
    assert config.get(JobManagerOptions.RPC_PORT) == 6130
    assert config.get(RestOptions.PORT) == 8082
    assert config.get(TaskManagerOptions.NUM_TASK_SLOTS) == 4
    assert config.get(CoreOptions.DEFAULT_PARALLELISM) == 2
    assert config.get(HighAvailabilityOptions.HA_MODE) == "zookeeper"
    assert config.get(HighAvailabilityOptions.HA_ZOOKEEPER_QUORUM) == "zk1:2181,zk2:2181,zk3:2181"
    assert config.get(HighAvailabilityOptions.HA_ZOOKEEPER_ROOT) == "/flink-prod"
    assert config.get(HighAvailabilityOptions.HA_CLUSTER_ID) == "/cluster-a"
    assert config.get(HighAvailabilityOptions.HA_STORAGE_PATH) == "s3://bucket/ha"
    assert config.get(HighAvailabilityOptions.ZOOKEEPER_SESSION_TIMEOUT) == timedelta(seconds=3)
    assert config.get(HighAvailabilityOptions.ZOOKEEPER_TOLERATE_SUSPENDED_CONNECTIONS) is True
    assert config.get(HighAvailabilityOptions.ZOOKEEPER_CLIENT_ACL) == "creator"
    assert config.get(StateBackendOptions.STATE_BACKEND) == "hashmap"
    assert config.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY) == "file:///var/flink/checkpoints"
    assert config.get(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS) == 3
    assert config.get(CheckpointingOptions.CHECKPOINTING_INTERVAL) == timedelta(minutes=1)
    assert config.get(RestartStrategyOptions.RESTART_STRATEGY) == "fixed-delay"
    assert config.get(RestartStrategyOptions.FIXED_DELAY_ATTEMPTS) == 10
    assert config.get(RestartStrategyOptions.FIXED_DELAY_DELAY) == timedelta(milliseconds=500)
    assert config.get(JobManagerOptions.FAILOVER_STRATEGY) == "full"
    assert config.get(HeartbeatManagerOptions.HEARTBEAT_INTERVAL) == timedelta(seconds=1)
    assert config.get(HeartbeatManagerOptions.HEARTBEAT_TIMEOUT) == timedelta(seconds=5)
    assert config.get(DeploymentOptions.PID_DIR) == "/var/run/flink"
    assert config.get(CoreOptions.TMP_DIRS) == ["/tmp/a", "/tmp/b", "/tmp/c"]
    assert config.get(S3Options.PATH_STYLE_ACCESS) is True
    assert config.get(TaskManagerOptions.PROCESS_MEMORY) == 1728 << 20


def test_flink_defaults_apply_to_unset_keys(tmp_path: Path) -> None:
    write_conf(tmp_path, "rest.port: 9000\n")
    config = load_configuration(tmp_path)
    assert config.get(JobManagerOptions.RPC_ADDRESS) == "localhost"
    assert config.get(JobManagerOptions.RPC_PORT) == 6123
    assert config.get(HighAvailabilityOptions.HA_MODE) == "NONE"
    assert config.get(HighAvailabilityOptions.HA_ZOOKEEPER_ROOT) == "/flink"
    assert config.get(HighAvailabilityOptions.HA_CLUSTER_ID) == "/default"
    assert config.get(HighAvailabilityOptions.ZOOKEEPER_SESSION_TIMEOUT) == timedelta(seconds=60)
    assert config.get(HighAvailabilityOptions.ZOOKEEPER_CONNECTION_TIMEOUT) == timedelta(seconds=15)
    assert config.get(HighAvailabilityOptions.ZOOKEEPER_RETRY_WAIT) == timedelta(seconds=5)
    assert config.get(HighAvailabilityOptions.ZOOKEEPER_MAX_RETRY_ATTEMPTS) == 3
    assert config.get(HighAvailabilityOptions.ZOOKEEPER_TOLERATE_SUSPENDED_CONNECTIONS) is False
    assert config.get(JobManagerOptions.FAILOVER_STRATEGY) == "region"
    assert config.get(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS) == 1
    assert config.get(CheckpointingOptions.CHECKPOINTING_INTERVAL) is None
    assert config.get(HeartbeatManagerOptions.HEARTBEAT_INTERVAL) == timedelta(seconds=10)
    assert config.get(HeartbeatManagerOptions.HEARTBEAT_TIMEOUT) == timedelta(seconds=50)
    assert config.get(RestartStrategyOptions.EXPONENTIAL_MULTIPLIER) == 1.5
    assert config.get(RestartStrategyOptions.FAILURE_RATE_INTERVAL) == timedelta(minutes=1)


def test_new_key_wins_over_its_deprecated_spelling(tmp_path: Path) -> None:
    write_conf(tmp_path, """
        high-availability: NONE
        high-availability.type: zookeeper
        state.backend.type: hashmap
        restart-strategy.type: exponentialdelay
        """)
    config = load_configuration(tmp_path)
    assert config.get(HighAvailabilityOptions.HA_MODE) == "zookeeper"
    assert config.get(RestartStrategyOptions.RESTART_STRATEGY) == "exponential-delay"


def test_flink_2s_checkpoint_keys_win_over_the_state_keys_they_replaced(tmp_path: Path) -> None:
    write_conf(tmp_path, """
        state.checkpoints.dir: /old/checkpoints
        execution.checkpointing.dir: /new/checkpoints
        state.savepoints.dir: /old/savepoints
        execution.checkpointing.savepoint-dir: /new/savepoints
        state.checkpoints.num-retained: 5
        execution.checkpointing.num-retained: 3
        state.backend.incremental: false
        execution.checkpointing.incremental: true
        """)
    config = load_configuration(tmp_path)
    assert config.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY) == "/new/checkpoints"
    assert config.get(CheckpointingOptions.SAVEPOINT_DIRECTORY) == "/new/savepoints"
    assert config.get(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS) == 3
    assert config.get(StateBackendOptions.INCREMENTAL_CHECKPOINTS) is True
    # alone, a 1.x key is still read
    old = Configuration({"state.checkpoints.dir": "/old/checkpoints", "state.checkpoints.num-retained": "5"})
    assert old.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY) == "/old/checkpoints"
    assert old.get(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS) == 5


def test_config_yaml_is_read_over_flink_conf_yaml(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_conf(tmp_path, "rest.port: 8124\n")
    write_conf(tmp_path, "rest:\n  port: 8123\n", name="config.yaml")
    assert load_configuration(tmp_path).get(RestOptions.PORT) == 8123
    assert "reading " + str(tmp_path / "config.yaml") + " only" in caplog.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("NONE", "NONE"), ("none", "NONE"), ("ZooKeeper", "zookeeper"), ("zookeeper", "zookeeper")],
)
def test_high_availability_values_are_case_insensitive(value: str, expected: str) -> None:
    assert Configuration({"high-availability": value}).get(HighAvailabilityOptions.HA_MODE) == expected


def test_dynamic_properties_override_the_file(tmp_path: Path) -> None:
    write_conf(tmp_path, "rest.port: 8081\nheartbeat.timeout: 50 s\n")
    config = load_configuration(
        tmp_path, ["-Drest.port=8090", "-D", "heartbeat.timeout=2 s", "-Dhigh-availability.cluster-id=/x"]
    )
    assert config.get(RestOptions.PORT) == 8090
    assert config.get(HeartbeatManagerOptions.HEARTBEAT_TIMEOUT) == timedelta(seconds=2)
    assert config.get(HighAvailabilityOptions.HA_CLUSTER_ID) == "/x"
    assert config.source_of("rest.port") == "-D"


def test_config_dir_comes_from_flink_conf_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_conf(tmp_path / "elsewhere", "rest.port: 8555\n")
    monkeypatch.setenv("FLINK_CONF_DIR", str(tmp_path / "elsewhere"))
    assert load_configuration().get(RestOptions.PORT) == 8555


def test_flink_2_config_yaml_is_read_when_there_is_no_flink_conf(tmp_path: Path) -> None:
    write_conf(tmp_path, "rest:\n  port: 8123\n", name="config.yaml")
    assert load_configuration(tmp_path).get(RestOptions.PORT) == 8123


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"no config.yaml or flink-conf.yaml in the conf dir {tmp_path}"):
        load_configuration(tmp_path)
    assert load_configuration(tmp_path, required=False).get(RestOptions.PORT) == 8081


def test_yaml_scalars_keep_their_text(tmp_path: Path) -> None:
    # YAML would read 'on' as a bool and '010' as octal 8; Flink reads the text as written.
    write_conf(tmp_path, "custom.flag: on\nparallelism.default: 010\nhigh-availability.cluster-id: '/quoted'\n")
    config = load_configuration(tmp_path)
    assert config.get_raw("custom.flag") == "on"
    assert config.get(CoreOptions.DEFAULT_PARALLELISM) == 10
    assert config.get(HighAvailabilityOptions.HA_CLUSTER_ID) == "/quoted"


def test_a_flat_value_that_is_not_yaml_is_read_like_flink_1(tmp_path: Path) -> None:
    write_conf(tmp_path, "env.java.opts: -Dkey=a: b -XX:+UseG1GC\nrest.port: 8088\n")
    config = load_configuration(tmp_path)
    assert config.get(DeploymentOptions.JAVA_OPTS) == "-Dkey=a: b -XX:+UseG1GC"
    assert config.get(RestOptions.PORT) == 8088


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        ("rest.port: 8081\nheartbeat.interval: 10 parsecs\n", 2, "heartbeat.interval", "unknown time unit 'parsecs'"),
        ("a.b: 1\n\n# c\nrest.port: eighty\n", 4, "rest.port", "'eighty' is not a whole number"),
        ("rest.port: 70000\n", 1, "rest.port", "70000 is not a port number; accepted: a port number from 0 to 65535"),
        ("high-availability: etcd\n", 1, "high-availability", "'etcd' is not one of the accepted values; "
                                                               "accepted: NONE, zookeeper"),
        ("jobmanager.execution.failover-strategy: partial\n", 1, "jobmanager.execution.failover-strategy",
         "accepted: full, region"),
        ("restart-strategy: sometimes\n", 1, "restart-strategy",
         "accepted: none, fixed-delay, failure-rate, exponential-delay"),
        ("state.backend: forst\n", 1, "state.backend", "'forst' (Flink's disaggregated state backend) is not "
                                                      "provided by ha-flink"),
        ("taskmanager.numberOfTaskSlots: 0\n", 1, "taskmanager.numberOfTaskSlots", "accepted: a whole number >= 1"),
        ("high-availability.zookeeper.client.tolerate-suspended-connections: maybe\n", 1,
         "high-availability.zookeeper.client.tolerate-suspended-connections", "accepted: true or false"),
        ("taskmanager.memory.process.size: 2 furlongs\n", 1, "taskmanager.memory.process.size",
         "accepted: a number with a unit (b, kb, mb, gb, tb)"),
        ("heartbeat:\n  interval: 1 fortnight\n", 2, "heartbeat.interval", "unknown time unit 'fortnight'"),
    ],
)
def test_a_bad_value_names_file_line_key_and_what_is_accepted(
    tmp_path: Path, text: str, line: int, key: str, fragment: str
) -> None:
    path = write_conf(tmp_path, text)
    with pytest.raises(ConfigurationError) as error:
        load_configuration(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: {key}: ")
    assert fragment in message
    assert "accepted:" in message
    assert error.value.source == f"{path}:{line}" and error.value.key == key


def test_a_malformed_flat_line_names_file_and_line(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "rest.port: 8081\nthis line has no separator: : :\njust words\n")
    with pytest.raises(ConfigurationError, match=rf"^{path}:3: malformed line 'just words'; expected 'key: value'"):
        load_configuration(tmp_path)


def test_broken_nested_yaml_names_the_line(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "rest:\n  port: 8081\n    address: x\n")
    with pytest.raises(ConfigurationError, match=rf"^{path}:3: is not valid YAML"):
        load_configuration(tmp_path)


def test_a_top_level_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "- rest.port\n- 8081\n")
    with pytest.raises(ConfigurationError, match=rf"^{path}:1: expected 'key: value' settings"):
        load_configuration(tmp_path)


@pytest.mark.parametrize("arg", ["-Drest.port", "-D=8081", "-D"])
def test_a_malformed_override_is_named(tmp_path: Path, arg: str) -> None:
    write_conf(tmp_path, "rest.port: 8081\n")
    with pytest.raises(ConfigurationError, match="^-D: "):
        load_configuration(tmp_path, [arg])


def test_a_bad_override_value_names_the_override(tmp_path: Path) -> None:
    write_conf(tmp_path, "rest.port: 8081\n")
    with pytest.raises(ConfigurationError, match=r"^-D: heartbeat.timeout: 'soon' is not a duration; accepted"):
        load_configuration(tmp_path, ["-Dheartbeat.timeout=soon"])


def test_unknown_keys_are_kept_and_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_conf(tmp_path, "rest.port: 8081\nmy.custom.key: 42\n")
    with caplog.at_level(logging.WARNING, logger="ha_flink.config"):
        config = load_configuration(tmp_path)
    assert config.get_raw("my.custom.key") == "42"
    assert config.to_dict()["my.custom.key"] == "42"
    assert f"{path}:2: unknown configuration key my.custom.key" in caplog.text


def test_a_key_set_twice_warns_and_the_later_wins(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_conf(tmp_path, "rest.port: 8081\nrest.port: 8082\n")
    with caplog.at_level(logging.WARNING, logger="ha_flink.config"):
        assert load_configuration(tmp_path).get(RestOptions.PORT) == 8082
    assert f"{path}:2: rest.port was already set at {path}:1" in caplog.text


def test_set_from_code_validates_and_to_dict_round_trips() -> None:
    config = Configuration()
    config.set(HeartbeatManagerOptions.HEARTBEAT_INTERVAL, timedelta(seconds=2))
    config.set(S3Options.PATH_STYLE_ACCESS, True)
    config.set(CoreOptions.TMP_DIRS, ["/a", "/b"])
    with pytest.raises(ConfigurationError, match="rest.port: 'x' is not a whole number"):
        config.set(RestOptions.PORT, "x")
    again = Configuration(config.to_dict())
    assert again.get(HeartbeatManagerOptions.HEARTBEAT_INTERVAL) == timedelta(seconds=2)
    assert again.get(S3Options.PATH_STYLE_ACCESS) is True
    assert again.get(CoreOptions.TMP_DIRS) == ["/a", "/b"]


def test_require_names_the_missing_key_and_why() -> None:
    with pytest.raises(ConfigurationError, match="high-availability.storageDir: is not set, but .*ZooKeeper HA"):
        Configuration().require(HighAvailabilityOptions.HA_STORAGE_PATH, "ZooKeeper HA keeps job graphs there")


@pytest.mark.parametrize("key", ["state.checkpoints.dir", "state.savepoints.dir", "execution.checkpointing.dir"])
def test_checkpoint_and_savepoint_folders_must_be_absolute(key: str) -> None:
    for relative in ("ckpt", "../../x", "./sp"):
        with pytest.raises(ConfigurationError, match="is neither an absolute path nor a URL") as raised:
            Configuration({key: relative})
        assert raised.value.key == key
    for absolute in ("/data/ckpt", "file:///data/ckpt", "s3://bucket/ckpt", "hdfs://nn:9000/ckpt"):
        assert Configuration({key: absolute}).get_raw(key) == absolute


def test_relative_checkpoint_folders_in_the_config_file_are_below_the_installation(tmp_path: Path) -> None:
    # as conf/flink-conf.yaml says: the bin/ scripts start every daemon in the installation folder
    (tmp_path / "flink-conf.yaml").write_text("state.checkpoints.dir: data/checkpoints\n"
                                              "state.savepoints.dir: s3://bucket/savepoints\n")
    config = load_configuration(tmp_path)
    assert config.get_raw("state.checkpoints.dir") == str(install_dir() / "data" / "checkpoints")
    assert config.get_raw("state.savepoints.dir") == "s3://bucket/savepoints"
    with pytest.raises(ConfigurationError, match="state.checkpoints.dir"):  # -D has no such promise
        load_configuration(tmp_path, ["-Dstate.checkpoints.dir=relative"])


def test_the_shipped_conf_loads() -> None:
    config = load_configuration(install_dir() / "conf")
    assert Path(config.get_raw("state.checkpoints.dir")).is_absolute()


def test_flinks_web_and_rest_client_keys_are_read(tmp_path: Path) -> None:
    from ha_flink.config import WebOptions

    write_conf(tmp_path, """
        web.refresh-interval: 3000
        web.cancel.enable: false
        web.checkpoints.history: 25
        rest.await-leader-timeout: 45 s
        rest.connection-timeout: 20000
        """)
    config = load_configuration(tmp_path)
    assert config.get(WebOptions.REFRESH_INTERVAL) == timedelta(seconds=3)
    assert config.get(WebOptions.CANCEL_ENABLE) is False
    assert config.get(WebOptions.CHECKPOINTS_HISTORY_SIZE) == 25
    assert config.get(RestOptions.AWAIT_LEADER_TIMEOUT) == timedelta(seconds=45)
    assert config.get(RestOptions.CONNECTION_TIMEOUT) == timedelta(seconds=20)
