"""The typed registry of configuration options: Flink's keys, Flink's defaults, the deprecated keys each
one still answers to, and the parser that turns a raw text (or YAML list) into a typed value.

Options are grouped in namespaces named after Flink's option classes (`HighAvailabilityOptions`, ...) so
a Flink user finds them where they expect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, TypeVar, overload

from ha_flink.config.units import DURATION_FORMS, MEMORY_FORMS, parse_duration, parse_memory_size

T = TypeVar("T")


@dataclass(frozen=True)
class OptionType(Generic[T]):
    """How a raw value becomes a typed one. `parse` raises ValueError; `accepted` says what is allowed."""

    name: str
    accepted: str
    parse: Callable[[Any], T]


def _parse_string(raw: Any) -> str:
    if isinstance(raw, list):
        raise ValueError(f"{raw!r} is a list, expected a single value")
    return str(raw)


def _parse_int(raw: Any) -> int:
    text = _parse_string(raw).strip()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _parse_float(raw: Any) -> float:
    text = _parse_string(raw).strip()
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _parse_bool(raw: Any) -> bool:
    text = _parse_string(raw).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"{raw!r} is not a boolean")


def _parse_list(raw: Any, separators: str) -> list[str]:
    if isinstance(raw, list):
        return [str(item).strip() for item in raw if str(item).strip()]
    text = str(raw)
    for sep in separators[1:]:
        text = text.replace(sep, separators[0])
    return [part.strip() for part in text.split(separators[0]) if part.strip()]


STRING: OptionType[str] = OptionType("string", "any text", _parse_string)
INT: OptionType[int] = OptionType("int", "a whole number", _parse_int)
FLOAT: OptionType[float] = OptionType("float", "a number", _parse_float)
BOOL: OptionType[bool] = OptionType("boolean", "true or false", _parse_bool)
DURATION: OptionType[timedelta] = OptionType("duration", DURATION_FORMS, lambda raw: parse_duration(_parse_string(raw)))
MEMORY_SIZE: OptionType[int] = OptionType("memory size", MEMORY_FORMS, lambda raw: parse_memory_size(_parse_string(raw)))
# Flink's io.tmp.dirs separates paths by ',', '|' or the path separator ':'.
PATH_LIST: OptionType[list[str]] = OptionType(
    "list of paths", "paths separated by ',', '|' or ':' (or a YAML list)", lambda raw: _parse_list(raw, ",|:")
)



def _parse_location(raw: Any) -> str:
    text = _parse_string(raw).strip()
    if "://" not in text and not text.startswith("/"):
        raise ValueError(f"{text!r} is neither an absolute path nor a URL: a relative folder would depend on "
                         "the working directory of each JobManager and TaskManager")
    return text


# A folder every process must agree on: an absolute path or a URL (file://, s3://, hdfs://).
LOCATION: OptionType[str] = OptionType("location", "an absolute path or a URL (file:///..., s3://...)", _parse_location)


def int_at_least(minimum: int) -> OptionType[int]:
    def parse(raw: Any) -> int:
        value = _parse_int(raw)
        if value < minimum:
            raise ValueError(f"{value} is below the minimum {minimum}")
        return value

    return OptionType("int", f"a whole number >= {minimum}", parse)


def port() -> OptionType[int]:
    def parse(raw: Any) -> int:
        value = _parse_int(raw)
        if not 0 <= value <= 65535:
            raise ValueError(f"{value} is not a port number")
        return value

    return OptionType("port", "a port number from 0 to 65535", parse)


def parse_port_range(text: str) -> list[int]:
    """'9249' -> [9249]; '9249-9260' -> [9249, ..., 9260] (Flink's port ranges)."""
    low, _, high = str(text).strip().partition("-")
    try:
        ports = list(range(int(low), int(high or low) + 1))
    except ValueError:
        raise ValueError(f"{text!r} is neither a port nor a range like 9249-9260") from None
    if not ports or not all(0 < p < 65536 for p in ports):
        raise ValueError(f"{text!r} is not a port range within 1-65535")
    return ports


def port_range() -> OptionType[str]:
    def parse(raw: Any) -> str:
        text = _parse_string(raw).strip()
        parse_port_range(text)
        return text

    return OptionType("port range", "a port (9249) or a range (9249-9260)", parse)


def float_at_least(minimum: float) -> OptionType[float]:
    def parse(raw: Any) -> float:
        value = _parse_float(raw)
        if value < minimum:
            raise ValueError(f"{value} is below the minimum {minimum}")
        return value

    return OptionType("float", f"a number >= {minimum}", parse)


def enum(*values: str, aliases: dict[str, str] | None = None, refused: dict[str, str] | None = None) -> OptionType[str]:
    """A case-insensitive choice. `aliases` map other spellings to a value; `refused` map values Flink
    knows but ha-flink does not provide to the reason, so the error says so instead of "unknown"."""
    table = {v.lower(): v for v in values}
    table.update({k.lower(): v for k, v in (aliases or {}).items()})
    accepted = ", ".join(values)

    def parse(raw: Any) -> str:
        text = _parse_string(raw).strip()
        if text.lower() in table:
            return table[text.lower()]
        if refused and text.lower() in refused:
            raise ValueError(f"{text!r} {refused[text.lower()]}")
        raise ValueError(f"{text!r} is not one of the accepted values")

    return OptionType("enum", accepted, parse)


@dataclass(frozen=True)
class ConfigOption(Generic[T]):
    """One configuration key: its type, default, the deprecated keys it falls back to, and its meaning."""

    key: str
    type: OptionType[T]
    default: T | None = None
    fallback_keys: tuple[str, ...] = ()
    description: str = ""

    def parse(self, raw: Any) -> T:
        return self.type.parse(raw)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, *self.fallback_keys)


if TYPE_CHECKING:
    class DefaultedConfigOption(ConfigOption[T]):
        """For the type checker only: an option with a default, so that reading it always gives a value
        (the parsers never return None). At run time every option is a plain ConfigOption."""

        default: T


@overload
def _option(key: str, type_: OptionType[T], default: T, *, fallback: tuple[str, ...] = (),
            doc: str = "") -> DefaultedConfigOption[T]: ...


@overload
def _option(key: str, type_: OptionType[T], default: None = None, *, fallback: tuple[str, ...] = (),
            doc: str = "") -> ConfigOption[T]: ...


def _option(key: str, type_: OptionType[T], default: T | None = None, *, fallback: tuple[str, ...] = (),
            doc: str = "") -> ConfigOption[T]:
    return ConfigOption(key, type_, default, fallback, doc)


class JobManagerOptions:
    RPC_ADDRESS = _option("jobmanager.rpc.address", STRING, "localhost", doc="host the JobManager listens on")
    RPC_PORT = _option("jobmanager.rpc.port", port(), 6123, doc="port of the JobManager's RPC endpoint")
    BIND_HOST = _option("jobmanager.bind-host", STRING, None,
                        doc="interface every listener of a JobManager binds to (RPC; REST and metrics unless "
                            "rest.bind-address / metrics.reporter.prom.host say otherwise); unset: 0.0.0.0")
    FAILOVER_STRATEGY = _option(
        "jobmanager.execution.failover-strategy", enum("full", "region"), "region",
        doc="which tasks restart after a task failure: all of them, or the failed pipelined region",
    )
    PROCESS_MEMORY = _option("jobmanager.memory.process.size", MEMORY_SIZE, None,
                             doc="total memory of a JobManager process")


class RestOptions:
    ADDRESS = _option("rest.address", STRING, None, doc="address clients use to reach the REST endpoint")
    PORT = _option("rest.port", port(), 8081, doc="port of the REST endpoint and web dashboard")
    BIND_ADDRESS = _option("rest.bind-address", STRING, None, doc="address the REST server binds to")
    SERVER_MAX_CONTENT_LENGTH = _option("rest.server.max-content-length", int_at_least(1), 104_857_600,
                                        doc="largest request body the REST server takes, in bytes (413 above)")
    AWAIT_LEADER_TIMEOUT = _option("rest.await-leader-timeout", DURATION, timedelta(seconds=30),
                                   doc="how long bin/flink waits for a leading JobManager to be known")
    FLAMEGRAPH_ENABLED = _option("rest.flamegraph.enabled", BOOL, False,
                                 doc="sample task threads' stacks for a vertex's flame graph (REST, dashboard)")
    FLAMEGRAPH_NUM_SAMPLES = _option("rest.flamegraph.num-samples", int_at_least(1), 100,
                                     doc="stack samples per flame graph")
    FLAMEGRAPH_DELAY = _option("rest.flamegraph.delay-between-samples", DURATION, timedelta(milliseconds=50),
                               doc="time between two stack samples")
    FLAMEGRAPH_STACK_DEPTH = _option("rest.flamegraph.stack-depth", int_at_least(1), 100,
                                     doc="frames kept per sample (the innermost)")
    FLAMEGRAPH_REFRESH_INTERVAL = _option("rest.flamegraph.refresh-interval", DURATION, timedelta(minutes=1),
                                          doc="how long a flame graph is shown before it is sampled again")
    CONNECTION_TIMEOUT = _option("rest.connection-timeout", DURATION, timedelta(seconds=15),
                                 doc="how long a REST request of bin/flink may take to connect and to answer")


class WebOptions:
    REFRESH_INTERVAL = _option("web.refresh-interval", DURATION, timedelta(seconds=1),
                               doc="how often the dashboard refreshes (Flink's default is 3 s; ours 1 s)")
    CANCEL_ENABLE = _option("web.cancel.enable", BOOL, True, doc="whether the dashboard offers to cancel jobs")
    SUBMIT_ENABLE = _option("web.submit.enable", BOOL, False,
                            doc="program upload in the dashboard: not provided (submit with bin/flink run); "
                                "true is named at start as not supported")
    CHECKPOINTS_HISTORY_SIZE = _option("web.checkpoints.history", int_at_least(1), 10,
                                       doc="checkpoints kept in the REST statistics' history")
    LOG_PATH = _option("web.log.path", STRING, None, doc="the JobManager's log file REST serves (unset: its own)")


class ClusterOptions:
    THREAD_DUMP_STACKTRACE_MAX_DEPTH = _option("cluster.thread-dump.stacktrace-max-depth", int_at_least(1), 50,
                                               doc="frames per thread in REST's thread dumps")


class HistoryServerOptions:
    """Only the log URL patterns: REST's log-url endpoints build their answers from them."""

    JOB_MANAGER_LOG_URL_PATTERN = _option("historyserver.log.jobmanager.url-pattern", STRING, None,
                                          doc="URL of a job's JobManager log, <jobid> filled in")
    TASK_MANAGER_LOG_URL_PATTERN = _option("historyserver.log.taskmanager.url-pattern", STRING, None,
                                           doc="URL of a TaskManager's log, <jobid> and <tmid> filled in")


class TaskManagerOptions:
    HOST = _option("taskmanager.host", STRING, None, doc="address the TaskManager advertises")
    NUM_TASK_SLOTS = _option("taskmanager.numberOfTaskSlots", int_at_least(1), 1, doc="slots per TaskManager")
    LOG_PATH = _option("taskmanager.log.path", STRING, None, doc="the TaskManager's log file REST serves")
    PROCESS_MEMORY = _option("taskmanager.memory.process.size", MEMORY_SIZE, None,
                             doc="total memory of a TaskManager process")
    RPC_PORT = _option("taskmanager.rpc.port", port(), 0, doc="port of the TaskManager's RPC endpoint; 0: any")
    DATA_PORT = _option("taskmanager.data.port", port(), 0,
                        doc="port of the TaskManager's data exchange (what other TaskManagers read); 0: any")
    BIND_HOST = _option("taskmanager.bind-host", STRING, None,
                        doc="interface every listener of a TaskManager binds to (RPC and data exchange; "
                            "metrics unless metrics.reporter.prom.host says otherwise); unset: 0.0.0.0")


class CoreOptions:
    DEFAULT_PARALLELISM = _option("parallelism.default", int_at_least(1), 1, doc="parallelism of jobs without one")
    TMP_DIRS = _option("io.tmp.dirs", PATH_LIST, None, doc="directories for temporary files")


class HighAvailabilityOptions:
    HA_MODE = _option(
        "high-availability.type",
        enum("NONE", "zookeeper", aliases={"none": "NONE"}),
        "NONE",
        fallback=("high-availability",),
        doc="NONE for a single JobManager, zookeeper for leader election among several",
    )
    HA_JOB_MANAGER_PORT = _option("high-availability.jobmanager.port", port(), 0,
                                  doc="RPC port of a JobManager under HA (several share a host); 0: any")
    HA_ZOOKEEPER_QUORUM = _option("high-availability.zookeeper.quorum", STRING, None,
                                  doc="host:port[,host:port...] of the ZooKeeper servers")
    HA_ZOOKEEPER_ROOT = _option("high-availability.zookeeper.path.root", STRING, "/flink",
                                doc="root znode of all Flink clusters")
    HA_CLUSTER_ID = _option("high-availability.cluster-id", STRING, "/default",
                            doc="znode and storage folder of this cluster under the root")
    HA_STORAGE_PATH = _option("high-availability.storageDir", STRING, None, fallback=("high-availability.storagePath",),
                              doc="file system URL where job graphs and checkpoint handles are kept")
    ZOOKEEPER_SESSION_TIMEOUT = _option("high-availability.zookeeper.client.session-timeout", DURATION,
                                        timedelta(seconds=60))
    ZOOKEEPER_CONNECTION_TIMEOUT = _option("high-availability.zookeeper.client.connection-timeout", DURATION,
                                           timedelta(seconds=15))
    ZOOKEEPER_RETRY_WAIT = _option("high-availability.zookeeper.client.retry-wait", DURATION, timedelta(seconds=5))
    ZOOKEEPER_MAX_RETRY_ATTEMPTS = _option("high-availability.zookeeper.client.max-retry-attempts",
                                           int_at_least(0), 3)
    ZOOKEEPER_TOLERATE_SUSPENDED_CONNECTIONS = _option(
        "high-availability.zookeeper.client.tolerate-suspended-connections", BOOL, False,
        doc="if true, only a lost session (not a suspended connection) revokes leadership",
    )
    ZOOKEEPER_CLIENT_ACL = _option("high-availability.zookeeper.client.acl", enum("open", "creator"), "open")


class StateBackendOptions:
    STATE_BACKEND = _option(
        "state.backend.type",
        enum("hashmap", "rocksdb", aliases={"filesystem": "hashmap", "jobmanager": "hashmap", "memory": "hashmap"},
             refused={"forst": "(Flink's disaggregated state backend) is not provided by ha-flink; use hashmap "
                               "or rocksdb"}),
        "hashmap",
        fallback=("state.backend",),
    )
    INCREMENTAL_CHECKPOINTS = _option(
        "execution.checkpointing.incremental", BOOL, False, fallback=("state.backend.incremental",),
        doc="rocksdb: a checkpoint uploads only the state files the last confirmed one did not",
    )
    ROCKSDB_LOCAL_DIR = _option("state.backend.rocksdb.localdir", STRING, None,
                                doc="local folder of the TaskManager's RocksDB files (default: the temp dir)")


class CheckpointingOptions:
    # Flink 2's names first; the 1.x names they replaced are read when the new one is not set (as Flink)
    CHECKPOINTS_DIRECTORY = _option("execution.checkpointing.dir", LOCATION, None, fallback=("state.checkpoints.dir",),
                                    doc="URL of the folder for checkpoint data")
    SAVEPOINT_DIRECTORY = _option("execution.checkpointing.savepoint-dir", LOCATION, None, fallback=("state.savepoints.dir",),
                                  doc="default URL of the folder for savepoints")
    MAX_RETAINED_CHECKPOINTS = _option("execution.checkpointing.num-retained", int_at_least(1), 1,
                                       fallback=("state.checkpoints.num-retained",),
                                       doc="completed checkpoints kept; when the latest cannot be restored, "
                                           "the next older one is")
    # Flink's default is NO_EXTERNALIZED_CHECKPOINTS (a FAILED job's checkpoints are deleted); here a failed
    # job keeps them, so it can be resumed with `flink run -s <its latest chk-N folder>`.
    EXTERNALIZED_CHECKPOINT_RETENTION = _option(
        "execution.checkpointing.externalized-checkpoint-retention",
        enum("DELETE_ON_CANCELLATION", "RETAIN_ON_CANCELLATION", "NO_EXTERNALIZED_CHECKPOINTS"),
        "DELETE_ON_CANCELLATION",
        doc="what happens to a job's checkpoints when it ends: FINISHED deletes them always; FAILED keeps them "
            "unless NO_EXTERNALIZED_CHECKPOINTS; CANCELED keeps them only with RETAIN_ON_CANCELLATION")
    CHECKPOINTING_INTERVAL = _option("execution.checkpointing.interval", DURATION, None,
                                     doc="interval of periodic checkpoints; unset means no checkpoints")
    CHECKPOINTING_MODE = _option("execution.checkpointing.mode", enum("EXACTLY_ONCE", "AT_LEAST_ONCE"),
                                 "EXACTLY_ONCE", doc="AT_LEAST_ONCE skips barrier alignment")
    CHECKPOINTING_TIMEOUT = _option("execution.checkpointing.timeout", DURATION, timedelta(minutes=10))
    MIN_PAUSE_BETWEEN_CHECKPOINTS = _option("execution.checkpointing.min-pause", DURATION, timedelta(0))
    MAX_CONCURRENT_CHECKPOINTS = _option("execution.checkpointing.max-concurrent-checkpoints", int_at_least(1), 1)
    TOLERABLE_FAILED_CHECKPOINTS = _option("execution.checkpointing.tolerable-failed-checkpoints",
                                           int_at_least(0), 0)


class RestartStrategyOptions:
    RESTART_STRATEGY = _option(
        "restart-strategy.type",
        enum("none", "fixed-delay", "failure-rate", "exponential-delay",
             aliases={"off": "none", "disable": "none", "fixeddelay": "fixed-delay",
                      "failurerate": "failure-rate", "exponentialdelay": "exponential-delay"}),
        None,
        fallback=("restart-strategy",),
        doc="unset: exponential-delay when checkpointing is enabled, none otherwise (as in Flink)",
    )
    FIXED_DELAY_ATTEMPTS = _option("restart-strategy.fixed-delay.attempts", int_at_least(0), 1)
    FIXED_DELAY_DELAY = _option("restart-strategy.fixed-delay.delay", DURATION, timedelta(seconds=1))
    FAILURE_RATE_MAX_FAILURES = _option("restart-strategy.failure-rate.max-failures-per-interval", int_at_least(1), 1)
    FAILURE_RATE_INTERVAL = _option("restart-strategy.failure-rate.failure-rate-interval", DURATION,
                                    timedelta(minutes=1))
    FAILURE_RATE_DELAY = _option("restart-strategy.failure-rate.delay", DURATION, timedelta(seconds=1))
    EXPONENTIAL_INITIAL_BACKOFF = _option("restart-strategy.exponential-delay.initial-backoff", DURATION,
                                          timedelta(seconds=1))
    EXPONENTIAL_MAX_BACKOFF = _option("restart-strategy.exponential-delay.max-backoff", DURATION,
                                      timedelta(minutes=1))
    EXPONENTIAL_MULTIPLIER = _option("restart-strategy.exponential-delay.backoff-multiplier", float_at_least(1.0), 1.5)
    EXPONENTIAL_RESET_THRESHOLD = _option("restart-strategy.exponential-delay.reset-backoff-threshold", DURATION,
                                          timedelta(hours=1))
    EXPONENTIAL_JITTER = _option("restart-strategy.exponential-delay.jitter-factor", float_at_least(0.0), 0.1)
    EXPONENTIAL_ATTEMPTS = _option("restart-strategy.exponential-delay.attempts-before-reset-backoff",
                                   int_at_least(1), 2**31 - 1)


class HeartbeatManagerOptions:
    HEARTBEAT_INTERVAL = _option("heartbeat.interval", DURATION, timedelta(seconds=10))
    HEARTBEAT_TIMEOUT = _option("heartbeat.timeout", DURATION, timedelta(seconds=50))


class DeploymentOptions:
    """The `env.*` keys that the bin/ scripts and the SSH deployment read."""

    PID_DIR = _option("env.pid.dir", STRING, "/tmp", doc="folder of the daemons' pid files")
    LOG_DIR = _option("env.log.dir", STRING, None, doc="folder of the daemons' logs; unset: <install>/log")
    SSH_OPTS = _option("env.ssh.opts", STRING, None, doc="extra ssh options for starting remote daemons")
    JAVA_OPTS = _option("env.java.opts.all", STRING, None, fallback=("env.java.opts",),
                        doc="JVM options (used for the ZooKeeper servers the scripts start)")


class MetricOptions:
    PROMETHEUS_PORT = _option("metrics.reporter.prom.port", port_range(), None,
                              doc="port, or range of ports, of each daemon's Prometheus endpoint; unset: none")
    PROMETHEUS_HOST = _option("metrics.reporter.prom.host", STRING, None,
                              doc="address the Prometheus endpoint binds to; unset: every interface")
    FETCHER_UPDATE_INTERVAL = _option("metrics.fetcher.update-interval", DURATION, timedelta(seconds=1),
                                      doc="how often the REST API fetches task metrics from the TaskManagers")


class S3Options:
    ENDPOINT = _option("s3.endpoint", STRING, None, doc="S3 endpoint URL (for MinIO, moto, ...)")
    ACCESS_KEY = _option("s3.access-key", STRING, None, fallback=("s3.access.key",))
    SECRET_KEY = _option("s3.secret-key", STRING, None, fallback=("s3.secret.key",))
    PATH_STYLE_ACCESS = _option("s3.path.style.access", BOOL, False, fallback=("s3.path-style-access",))


class SecurityOptions:
    """Flink's `security.ssl.*`, `zookeeper.sasl.*` and `security.kerberos.*` keys (SecurityOptions.java).
    Keystore and truststore types: PKCS12 (the JVM's default type, Flink's default) or PEM; JKS is refused
    with the keytool command that converts it."""

    SSL_INTERNAL_ENABLED = _option("security.ssl.internal.enabled", BOOL, False, fallback=("security.ssl.enabled",),
                                   doc="mutual TLS on all JobManager/TaskManager RPC and data exchange")
    SSL_REST_ENABLED = _option("security.ssl.rest.enabled", BOOL, False, fallback=("security.ssl.enabled",),
                               doc="HTTPS on the REST endpoints and the dashboard")
    SSL_REST_AUTHENTICATION_ENABLED = _option("security.ssl.rest.authentication-enabled", BOOL, False,
                                              doc="mutual TLS on REST: clients must present a trusted certificate")
    SSL_INTERNAL_KEYSTORE = _option("security.ssl.internal.keystore", STRING, None, fallback=("security.ssl.keystore",))
    SSL_INTERNAL_KEYSTORE_PASSWORD = _option("security.ssl.internal.keystore-password", STRING, None,
                                             fallback=("security.ssl.keystore-password",))
    SSL_INTERNAL_KEY_PASSWORD = _option("security.ssl.internal.key-password", STRING, None,
                                        fallback=("security.ssl.key-password",))
    SSL_INTERNAL_KEYSTORE_TYPE = _option("security.ssl.internal.keystore-type", STRING, "PKCS12")
    SSL_INTERNAL_TRUSTSTORE = _option("security.ssl.internal.truststore", STRING, None,
                                      fallback=("security.ssl.truststore",))
    SSL_INTERNAL_TRUSTSTORE_PASSWORD = _option("security.ssl.internal.truststore-password", STRING, None,
                                               fallback=("security.ssl.truststore-password",))
    SSL_INTERNAL_TRUSTSTORE_TYPE = _option("security.ssl.internal.truststore-type", STRING, "PKCS12")
    SSL_INTERNAL_CERT_FINGERPRINT = _option("security.ssl.internal.cert.fingerprint", STRING, None,
                                            doc="SHA-1 fingerprint(s) a peer's certificate must have (comma-separated)")
    SSL_REST_KEYSTORE = _option("security.ssl.rest.keystore", STRING, None, fallback=("security.ssl.keystore",))
    SSL_REST_KEYSTORE_PASSWORD = _option("security.ssl.rest.keystore-password", STRING, None,
                                         fallback=("security.ssl.keystore-password",))
    SSL_REST_KEY_PASSWORD = _option("security.ssl.rest.key-password", STRING, None,
                                    fallback=("security.ssl.key-password",))
    SSL_REST_KEYSTORE_TYPE = _option("security.ssl.rest.keystore-type", STRING, "PKCS12")
    SSL_REST_TRUSTSTORE = _option("security.ssl.rest.truststore", STRING, None, fallback=("security.ssl.truststore",))
    SSL_REST_TRUSTSTORE_PASSWORD = _option("security.ssl.rest.truststore-password", STRING, None,
                                           fallback=("security.ssl.truststore-password",))
    SSL_REST_TRUSTSTORE_TYPE = _option("security.ssl.rest.truststore-type", STRING, "PKCS12")
    SSL_REST_CERT_FINGERPRINT = _option("security.ssl.rest.cert.fingerprint", STRING, None,
                                        doc="SHA-1 fingerprint(s) the REST peer's certificate must have")
    SSL_PROTOCOL = _option("security.ssl.protocol", enum("TLSv1.2", "TLSv1.3"), "TLSv1.2",
                           doc="the lowest TLS version accepted")
    SSL_VERIFY_HOSTNAME = _option("security.ssl.verify-hostname", BOOL, True,
                                  doc="check that a server's certificate names the host it was reached at")
    ZOOKEEPER_SASL_DISABLE = _option("zookeeper.sasl.disable", BOOL, False)
    ZOOKEEPER_SASL_SERVICE_NAME = _option("zookeeper.sasl.service-name", STRING, "zookeeper")
    ZOOKEEPER_SASL_LOGIN_CONTEXT_NAME = _option("zookeeper.sasl.login-context-name", STRING, "Client",
                                                doc="the JAAS section holding the ZooKeeper credentials")
    KERBEROS_LOGIN_CONTEXTS = _option("security.kerberos.login.contexts", STRING, None,
                                      doc="JAAS login contexts given the Kerberos credentials (e.g. Client)")
    KERBEROS_LOGIN_PRINCIPAL = _option("security.kerberos.login.principal", STRING, None,
                                       fallback=("security.principal",))
    KERBEROS_LOGIN_KEYTAB = _option("security.kerberos.login.keytab", STRING, None, fallback=("security.keytab",))
    KERBEROS_LOGIN_USE_TICKET_CACHE = _option("security.kerberos.login.use-ticket-cache", BOOL, True)


_NAMESPACES = (
    JobManagerOptions, RestOptions, WebOptions, ClusterOptions, HistoryServerOptions, TaskManagerOptions, CoreOptions,
    HighAvailabilityOptions,
    StateBackendOptions, CheckpointingOptions, RestartStrategyOptions, HeartbeatManagerOptions,
    DeploymentOptions, MetricOptions, S3Options, SecurityOptions,
)


def all_options() -> Iterator[ConfigOption[Any]]:
    for namespace in _NAMESPACES:
        for value in vars(namespace).values():
            if isinstance(value, ConfigOption):
                yield value


# Every key (main and deprecated) -> its option.
OPTIONS_BY_KEY: dict[str, ConfigOption[Any]] = {key: opt for opt in all_options() for key in opt.keys}
