"""ZooKeeper's SASL credentials, read from the JAAS login configuration file that Flink users name with
`-Djava.security.auth.login.config=<file>` in `env.java.opts.all` (DeploymentOptions.JAVA_OPTS; this
project has no per-daemon `env.java.opts.jobmanager` / `.taskmanager` options, so that one key is read).

This module owns: the parser of Java's JAAS syntax (`parse_jaas`, `read_jaas_file`), finding the file in the
JVM options (`jaas_file_from_java_opts`), and the decision what the ZooKeeper client authenticates as
(`zookeeper_sasl`), with Flink's keys (`zookeeper.sasl.disable`, `zookeeper.sasl.login-context-name`,
`zookeeper.sasl.service-name`, `security.kerberos.login.*`).

Java's syntax (sun.security.provider.ConfigFile)::

    SectionName {
        module.Class  flag  key="value" key2=value2;
        other.Module  flag;
    };

with `//` and `/* */` comments; flag is required, requisite, sufficient or optional. A section name may
appear once. `${property}` expansion is not done (there are no Java system properties to expand).

Only DIGEST-MD5 (ZooKeeper's `DigestLoginModule`) is supported: Kerberos (GSSAPI) needs a KDC and a GSSAPI
library, which ha-flink does not use, so a Kerberos set-up is refused with the key or file:line named
rather than silently connecting unauthenticated."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ha_flink.config import Configuration, ConfigurationError, DeploymentOptions, SecurityOptions

JAAS_PROPERTY = "java.security.auth.login.config"
DIGEST_LOGIN_MODULE = "org.apache.zookeeper.server.auth.DigestLoginModule"
KRB5_LOGIN_MODULE = "com.sun.security.auth.module.Krb5LoginModule"
DIGEST_MD5 = "DIGEST-MD5"
FLAGS = ("required", "requisite", "sufficient", "optional")


@dataclass(frozen=True)
class JaasEntry:
    """One `module.Class flag key=value ...;` line of a section; `line` is where it starts (1-based)."""

    module: str
    flag: str
    options: Mapping[str, str]
    line: int

    @property
    def is_kerberos(self) -> bool:
        # Oracle/OpenJDK's and IBM's Krb5LoginModule
        return self.module.rsplit(".", 1)[-1] == "Krb5LoginModule"


@dataclass(frozen=True)
class JaasSection:
    name: str
    entries: tuple[JaasEntry, ...]
    line: int


@dataclass(frozen=True)
class JaasConfiguration:
    """A parsed JAAS file: its sections by name, in file order."""

    source: str
    sections: Mapping[str, JaasSection]

    def section(self, name: str) -> JaasSection | None:
        return self.sections.get(name)


@dataclass(frozen=True)
class ZooKeeperSasl:
    """What the ZooKeeper client authenticates as. `jaas_file` and `section` are for messages."""

    mechanism: str
    username: str
    password: str = field(repr=False)  # never in a log line or a traceback's repr
    service_name: str
    jaas_file: Path
    section: str
    line: int = 0

    def kazoo_sasl_options(self) -> dict[str, str]:
        """kazoo's `sasl_options`. ZooKeeper's Java client uses the protocol "zookeeper" for DIGEST-MD5
        whatever `zookeeper.sasl.service-name` says (that key names the Kerberos service), and so do we: a
        server checks the digest-uri `zookeeper/zk-sasl-md5`."""
        return {"mechanism": self.mechanism, "username": self.username, "password": self.password,
                "service": "zookeeper"}

    def describe(self) -> str:
        return f"{self.mechanism} user {self.username!r} from section {self.section} of {self.jaas_file}:{self.line}"


# --- the parser ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string" or one of "{", "}", ";", "="
    text: str
    line: int


def _tokens(text: str, source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ConfigurationError("a /* comment is never closed with */", source=f"{source}:{line}")
            line += text.count("\n", i, end)
            i = end + 2
        elif c in "{};=":
            tokens.append(_Token(c, c, line))
            i += 1
        elif c == '"':
            start_line, chars, i = line, [], i + 1
            while True:
                if i >= n or text[i] == "\n":
                    raise ConfigurationError('a quoted value is not closed with " on its line',
                                             source=f"{source}:{start_line}")
                if text[i] == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                    continue
                if text[i] == '"':
                    i += 1
                    break
                chars.append(text[i])
                i += 1
            tokens.append(_Token("string", "".join(chars), start_line))
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in '{};="' and not text.startswith("//", i) \
                    and not text.startswith("/*", i):
                i += 1
            tokens.append(_Token("word", text[start:i], line))
    return tokens


def parse_jaas(text: str, source: str) -> JaasConfiguration:
    """Parse a JAAS login configuration; errors name `source:line` and what was expected there."""
    tokens = _tokens(text, source)
    sections: dict[str, JaasSection] = {}
    position = 0

    def take(*kinds: str, what: str) -> _Token:
        nonlocal position
        if position >= len(tokens):
            last = tokens[-1].line if tokens else 1
            raise ConfigurationError(f"the file ends where {what} was expected", source=f"{source}:{last}")
        token = tokens[position]
        if token.kind not in kinds:
            raise ConfigurationError(f"expected {what}, found {token.text!r}", source=f"{source}:{token.line}")
        position += 1
        return token

    def peek() -> _Token | None:
        return tokens[position] if position < len(tokens) else None

    while position < len(tokens):
        name = take("word", what="a section name (e.g. Client {)")
        take("{", what=f"'{{' after the section name {name.text}")
        entries: list[JaasEntry] = []
        while (token := peek()) is not None and token.kind != "}":
            module = take("word", what=f"a login module class name in section {name.text} (or '}}')")
            flag = take("word", what=f"a flag after {module.text} ({', '.join(FLAGS)})")
            if flag.text.lower() not in FLAGS:
                raise ConfigurationError(f"{flag.text!r} is not a login module flag; expected one of "
                                         f"{', '.join(FLAGS)}", source=f"{source}:{flag.line}")
            options: dict[str, str] = {}
            while (token := peek()) is not None and token.kind != ";":
                key = take("word", what=f"an option key=value or ';' to end the {module.text} entry of "
                                             f"line {module.line}")
                take("=", what=f"'=' after the option {key.text}")
                value = take("word", "string", what=f"a value for the option {key.text}")
                options[key.text] = value.text
            take(";", what=f"';' to end the {module.text} entry of line {module.line}")
            entries.append(JaasEntry(module.text, flag.text.lower(), options, module.line))
        take("}", what=f"'}}' to close section {name.text}")
        take(";", what=f"';' after the '}}' of section {name.text}")
        if name.text in sections:
            raise ConfigurationError(f"section {name.text} is defined twice (first at line "
                                     f"{sections[name.text].line})", source=f"{source}:{name.line}")
        sections[name.text] = JaasSection(name.text, tuple(entries), name.line)
    return JaasConfiguration(source, sections)


def read_jaas_file(path: Path, named_by: str = "") -> JaasConfiguration:
    """Read and parse `path`; a missing or unreadable file is a ConfigurationError naming it (and `named_by`,
    where it was configured)."""
    where = f" (named by {named_by})" if named_by else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"the JAAS file{where} does not exist", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"the JAAS file{where} cannot be read: {error}", source=str(path)) from None
    try:
        return parse_jaas(text, str(path))
    except ConfigurationError as error:
        raise ConfigurationError(f"{error.reason}{where}", source=error.source) from None


# --- where the file is named ----------------------------------------------------------------------------


def jaas_file_from_java_opts(java_opts: str | None, key: str = DeploymentOptions.JAVA_OPTS.key,
                             working_dir: Path | None = None) -> Path | None:
    """The file of the last `-Djava.security.auth.login.config=...` in the JVM options (the JVM takes the
    last one). `==` (Java's "this file only") and a `file:` URL are accepted. A relative path is taken
    from `working_dir` (default: this process's), as the JVM started there takes it."""
    if not java_opts:
        return None
    try:
        words = shlex.split(java_opts)
    except ValueError as error:
        raise ConfigurationError(f"cannot be split into JVM options: {error}", key=key) from None
    found: str | None = None
    for word in words:
        if word.startswith(f"-D{JAAS_PROPERTY}="):
            found = word[len(f"-D{JAAS_PROPERTY}="):]
    if found is None:
        return None
    value = found.removeprefix("=").removeprefix("file://").removeprefix("file:")
    if not value:
        raise ConfigurationError(f"-D{JAAS_PROPERTY}= names no file", key=key)
    path = Path(value).expanduser()
    return path if path.is_absolute() else (working_dir or Path.cwd()) / path


def configured_jaas_file(config: Configuration) -> Path | None:
    return jaas_file_from_java_opts(config.get(DeploymentOptions.JAVA_OPTS), java_opts_key(config))


def java_opts_key(config: Configuration) -> str:
    """The key the JVM options were given under (`env.java.opts.all` or its deprecated `env.java.opts`)."""
    for key in DeploymentOptions.JAVA_OPTS.keys:
        if key in config:
            return key
    return DeploymentOptions.JAVA_OPTS.key


# --- what the ZooKeeper client authenticates as ----------------------------------------------------------


def kerberos_unsupported(where: str) -> str:
    return (f"{where}: Kerberos (GSSAPI) is not supported by ha-flink on this machine (no KDC, no GSSAPI "
            f"library); use DIGEST-MD5: a JAAS section with {DIGEST_LOGIN_MODULE} required "
            'username="..." password="...";')


def zookeeper_sasl(config: Configuration) -> ZooKeeperSasl | None:
    """The ZooKeeper client's SASL credentials, as Flink's ZooKeeperModule and ZooKeeper's client would
    find them; None when SASL is off (`zookeeper.sasl.disable`) or no JAAS file is named.

    Flink sets `zookeeper.sasl.clientconfig` to the login context name, so ZooKeeper's client refuses to go
    on when the named file lacks that section: that is an error here too, as is any entry that does not
    give DIGEST-MD5 credentials."""
    if config.get(SecurityOptions.ZOOKEEPER_SASL_DISABLE):
        return None
    context = config.get(SecurityOptions.ZOOKEEPER_SASL_LOGIN_CONTEXT_NAME)
    _refuse_kerberos_login_contexts(config, context)
    path = configured_jaas_file(config)
    if path is None:
        return None
    named_by = f"-D{JAAS_PROPERTY} in {java_opts_key(config)}"
    jaas = read_jaas_file(path, named_by)
    section = jaas.section(context)
    context_key = SecurityOptions.ZOOKEEPER_SASL_LOGIN_CONTEXT_NAME.key
    if section is None:
        known = ", ".join(jaas.sections) or "none"
        raise ConfigurationError(
            f"the JAAS file (named by {named_by}) has no section {context} ({context_key}), so the ZooKeeper "
            f"client cannot authenticate; its sections: {known}. Add {context} {{ {DIGEST_LOGIN_MODULE} "
            'required username="..." password="..."; }; or set zookeeper.sasl.disable: true',
            source=str(path))
    for entry in section.entries:
        if entry.is_kerberos:
            raise ConfigurationError(kerberos_unsupported(f"section {context} uses {entry.module}"),
                                     source=f"{path}:{entry.line}")
    digests = [entry for entry in section.entries if entry.module == DIGEST_LOGIN_MODULE]
    if not digests:
        modules = ", ".join(entry.module for entry in section.entries) or "no login module"
        raise ConfigurationError(
            f"section {context} ({context_key}) has {modules}; ZooKeeper's DIGEST-MD5 needs "
            f'{DIGEST_LOGIN_MODULE} required username="..." password="...";',
            source=f"{path}:{section.line}")
    if len(digests) > 1:
        raise ConfigurationError(f"section {context} has {len(digests)} {DIGEST_LOGIN_MODULE} entries (lines "
                                 f"{', '.join(str(e.line) for e in digests)}); give one",
                                 source=f"{path}:{digests[1].line}")
    entry = digests[0]
    missing = [name for name in ("username", "password") if name not in entry.options]
    if missing:
        raise ConfigurationError(f"the {DIGEST_LOGIN_MODULE} entry of section {context} has no "
                                 f"{' and no '.join(missing)}; give username=\"...\" password=\"...\"",
                                 source=f"{path}:{entry.line}")
    if not entry.options["username"]:
        raise ConfigurationError(f"the {DIGEST_LOGIN_MODULE} entry of section {context} has an empty username",
                                 source=f"{path}:{entry.line}")
    return ZooKeeperSasl(DIGEST_MD5, entry.options["username"], entry.options["password"],
                         config.get(SecurityOptions.ZOOKEEPER_SASL_SERVICE_NAME), path, context, entry.line)


def _refuse_kerberos_login_contexts(config: Configuration, context: str) -> None:
    """Flink's JaasModule gives every context in `security.kerberos.login.contexts` a Krb5LoginModule (from
    the keytab, else the ticket cache): with the ZooKeeper context among them Flink would use GSSAPI."""
    contexts = [name.strip() for name in (config.get(SecurityOptions.KERBEROS_LOGIN_CONTEXTS) or "").split(",")]
    if context not in contexts:
        return
    keytab = config.get(SecurityOptions.KERBEROS_LOGIN_KEYTAB)
    principal = config.get(SecurityOptions.KERBEROS_LOGIN_PRINCIPAL)
    ticket_cache = config.get(SecurityOptions.KERBEROS_LOGIN_USE_TICKET_CACHE)
    if keytab or principal or ticket_cache:
        how = (f"{SecurityOptions.KERBEROS_LOGIN_KEYTAB.key} / {SecurityOptions.KERBEROS_LOGIN_PRINCIPAL.key}"
               if keytab or principal else f"the ticket cache ({SecurityOptions.KERBEROS_LOGIN_USE_TICKET_CACHE.key})")
        raise ConfigurationError(
            kerberos_unsupported(f"names {context} ({SecurityOptions.ZOOKEEPER_SASL_LOGIN_CONTEXT_NAME.key}), so "
                                 f"Flink would log in to ZooKeeper with Kerberos from {how}")
            + f"; remove {context} from {SecurityOptions.KERBEROS_LOGIN_CONTEXTS.key}",
            key=SecurityOptions.KERBEROS_LOGIN_CONTEXTS.key)

