"""Reading `flink-conf.yaml` (or Flink 2's `config.yaml`) from a conf dir, plus `-D key=value` overrides.

Both of Flink's file shapes are read: the flat `key: value` lines of Flink 1 and nested YAML mappings of
Flink 2 (`high-availability: {type: zookeeper}` is `high-availability.type`). The file is composed with
PyYAML to keep line numbers and the raw text of every scalar (`500 ms` stays text, `true` is not turned
into a bool before our own parser sees it). A flat file that is not valid YAML (a value holding `: `) is
read line by line as Flink 1's parser does."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from ha_flink.config.configuration import Configuration
from ha_flink.config.errors import ConfigurationError
from ha_flink.config.options import LOCATION, OPTIONS_BY_KEY

logger = logging.getLogger(__name__)

CONFIG_FILE_NAMES = ("config.yaml", "flink-conf.yaml")  # Flink 2's name first; 1.x's is read without it
DYNAMIC_SOURCE = "-D"


@dataclass(frozen=True)
class RawEntry:
    key: str
    value: Any  # str, or list[str] for a YAML sequence
    line: int


def install_dir() -> Path:
    """The root of this ha-flink installation (the folder holding `bin/`, `conf/`, `ha_flink/`)."""
    return Path(__file__).resolve().parents[2]


def default_conf_dir() -> Path:
    """`$FLINK_CONF_DIR`, else `$FLINK_HOME/conf`, else the installation's `conf/`, as Flink's scripts do."""
    if os.environ.get("FLINK_CONF_DIR"):
        return Path(os.environ["FLINK_CONF_DIR"])
    if os.environ.get("FLINK_HOME"):
        return Path(os.environ["FLINK_HOME"]) / "conf"
    return install_dir() / "conf"


def find_config_file(conf_dir: Path) -> Path | None:
    present = [conf_dir / name for name in CONFIG_FILE_NAMES if (conf_dir / name).is_file()]
    if len(present) > 1:
        logger.warning("Both %s and %s exist; reading %s only", present[0], present[1], present[0])
    return present[0] if present else None


def load_configuration(
    conf_dir: str | os.PathLike[str] | None = None,
    dynamic_properties: Iterable[str] = (),
    *,
    required: bool = True,
) -> Configuration:
    """Load the conf dir's config file, then apply `-D` overrides (which win).

    With `required`, a missing conf dir or config file is an error naming the path; without it, Flink's
    defaults are used (a local run of a job script needs no conf dir)."""
    directory = Path(conf_dir) if conf_dir is not None else default_conf_dir()
    config = Configuration()
    path = find_config_file(directory) if directory.is_dir() else None
    if path is None:
        if required:
            raise ConfigurationError(
                f"no {' or '.join(CONFIG_FILE_NAMES)} in the conf dir {directory} "
                "(set FLINK_CONF_DIR to the folder that holds it)"
            )
    else:
        for entry in read_config_file(path):
            _apply(config, entry.key, _in_install_dir(entry.key, entry.value), f"{path}:{entry.line}")
    for key, value in parse_dynamic_properties(dynamic_properties):
        _apply(config, key, value, DYNAMIC_SOURCE)
    return config


def _in_install_dir(key: str, value: Any) -> Any:
    """A relative folder of a key that must name one folder for every process (state.checkpoints.dir, ...)
    as the config file means it: below the installation folder, where the bin/ scripts start every daemon
    on every host. Set any other way (code, -D) a relative folder is refused, naming the key."""
    option = OPTIONS_BY_KEY.get(key)
    if option is None or option.type is not LOCATION or not isinstance(value, str):
        return value
    text = value.strip()
    if not text or "://" in text or text.startswith("/"):
        return value
    return str(install_dir() / text)


def _apply(config: Configuration, key: str, value: Any, source: str) -> None:
    previous = config.source_of(key)
    if previous is not None and previous != DYNAMIC_SOURCE and source != DYNAMIC_SOURCE:
        logger.warning("%s: %s was already set at %s; the later value wins", source, key, previous)
    if key not in OPTIONS_BY_KEY:
        logger.warning("%s: unknown configuration key %s (kept, but ha-flink does not use it)", source, key)
    config.set(key, value, source=source)


def read_config_file(path: str | os.PathLike[str]) -> list[RawEntry]:
    """The entries of one config file, in order, with their line numbers."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the config file: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})", source=str(path)) from None
    try:
        return parse_yaml_config(text, str(path))
    except yaml.YAMLError as exc:
        if _looks_nested(text):
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigurationError(f"is not valid YAML: {problem}", source=where) from None
        return parse_flat_config(text, str(path))


def _looks_nested(text: str) -> bool:
    """A file with indented settings is meant as nested YAML; only flat files get Flink 1's line parser."""
    for line in text.splitlines():
        stripped = line.split("#", 1)[0]
        if stripped.strip() and stripped[0] in " \t":
            return True
    return False


def parse_yaml_config(text: str, source_name: str) -> list[RawEntry]:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise ConfigurationError(
            "expected 'key: value' settings (a YAML mapping) at the top level",
            source=f"{source_name}:{root.start_mark.line + 1}",
        )
    entries: list[RawEntry] = []
    _flatten(root, "", source_name, entries)
    return entries


def _flatten(node: yaml.MappingNode, prefix: str, source_name: str, out: list[RawEntry]) -> None:
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or not str(key_node.value).strip():
            raise ConfigurationError("a key must be plain text", source=f"{source_name}:{line}")
        key = f"{prefix}{key_node.value.strip()}"
        if isinstance(value_node, yaml.MappingNode):
            _flatten(value_node, f"{key}.", source_name, out)
        elif isinstance(value_node, yaml.SequenceNode):
            items = []
            for item in value_node.value:
                if not isinstance(item, yaml.ScalarNode):
                    raise ConfigurationError(
                        "list items must be plain values", source=f"{source_name}:{item.start_mark.line + 1}", key=key
                    )
                items.append(item.value)
            out.append(RawEntry(key, items, line))
        elif value_node.tag == "tag:yaml.org,2002:null" or (value_node.style is None and value_node.value == ""):
            logger.warning("%s:%d: %s has no value; ignored", source_name, line, key)
        else:
            out.append(RawEntry(key, value_node.value, line))


def parse_flat_config(text: str, source_name: str) -> list[RawEntry]:
    """Flink 1's line parser: `key: value` per line, `#` starts a comment anywhere."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        key, sep, value = content.partition(": ")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigurationError(
                f"malformed line {content!r}; expected 'key: value'", source=f"{source_name}:{number}"
            )
        entries.append(RawEntry(key, value, number))
    return entries


def parse_dynamic_properties(args: Iterable[str]) -> list[tuple[str, str]]:
    """`-D key=value` overrides, given as `["-Dk=v", "-D", "k=v", "k=v"]` (each form Flink's CLI accepts)."""
    pairs: list[tuple[str, str]] = []
    pending_flag = False
    for arg in args:
        if arg == "-D":
            pending_flag = True
            continue
        text = arg[2:] if arg.startswith("-D") else arg
        pending_flag = False
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"malformed override {arg!r}; expected -D key=value", source=DYNAMIC_SOURCE)
        pairs.append((key.strip(), value.strip()))
    if pending_flag:
        raise ConfigurationError("-D is missing its key=value", source=DYNAMIC_SOURCE)
    return pairs


def split_dynamic_properties(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate `-D` overrides from the other arguments of a command line: (overrides, rest)."""
    overrides: list[str] = []
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "-D":
            overrides.append(f"-D{next(it, '')}")
        elif arg.startswith("-D"):
            overrides.append(arg)
        else:
            rest.append(arg)
    return overrides, rest
