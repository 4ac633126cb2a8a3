"""PyFlink's own source, read without PyFlink's JVM, and the public API it defines.

This module owns three things the API-compatibility tests (tests/pyflink_api/) need:

- `pyflink_source()`: the `pyflink` package of the `apache-flink` wheel (pure Python plus PyFlink's
  examples), downloaded once with pip into a cache folder keyed by the version and extracted there. PyFlink
  is never installed or imported: its modules import py4j and start a JVM.
- `read_surface()`: PyFlink's public names (each `__all__`, followed to the defining module) with their
  kind, methods, parameters, nested classes and Generic type parameters, read with `ast` into dataclasses.
- `compare()`: the same paths under `ha_flink` (`pyflink.` -> `ha_flink.`), imported and inspected, and
  every difference as one readable line (`pyflink.datastream.DataStream.execute_and_collect: missing`).

It also lists PyFlink's DataStream example programs (`pyflink_examples()`) and what each needs."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

PYFLINK_VERSION = "2.3.0"

# The wheel is platform-tagged (it carries a few compiled modules we never use), so pin one tag: the same
# Python source comes down on any machine, and pip never falls back to building the sdist.
_WHEEL_TAG_ARGS = ("--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
                   "--platform", "manylinux2014_x86_64")
_COMPILED = (".so", ".pyd", ".c", ".pyx", ".pxd")  # Cython modules and their C: never read, 16 of the 19 MB
_COMPLETE = ".complete"  # written last: a folder without it is a half-finished extraction


class PyFlinkUnavailable(RuntimeError):
    """PyFlink's wheel is neither in the cache nor downloadable (no network, no index); the tests skip."""


# --- the wheel -------------------------------------------------------------------------------------------


def cache_folder(version: str = PYFLINK_VERSION) -> Path:
    """Where the extracted wheel of `version` lives: outside the repository, so no .gitignore is needed."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ha-flink" / f"apache-flink-{version}"


# A failed download is not retried in the same process: every test that needs the source skips at once.
_UNAVAILABLE: dict[Path, PyFlinkUnavailable] = {}


def pyflink_source(version: str = PYFLINK_VERSION) -> Path:
    """The folder of the extracted `pyflink` package of apache-flink `version`; downloads it on first use.
    Raises PyFlinkUnavailable when it is not cached and cannot be downloaded."""
    folder = cache_folder(version)
    if (folder / _COMPLETE).exists():
        return folder / "pyflink"
    if folder in _UNAVAILABLE:
        raise _UNAVAILABLE[folder]
    try:
        return _fetch(version, folder)
    except PyFlinkUnavailable as exc:
        _UNAVAILABLE[folder] = exc
        raise


def _fetch(version: str, folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"apache-flink-{version}-", dir=folder.parent) as tmp:
        wheel = _download_wheel(version, Path(tmp) / "download")
        staging = Path(tmp) / "extracted"
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist()
                       if name.startswith("pyflink/") and not name.endswith(_COMPILED)]
            if not members:
                raise PyFlinkUnavailable(f"{wheel.name} holds no pyflink/ package")
            archive.extractall(staging, members)
        (staging / _COMPLETE).write_text(wheel.name + "\n")
        # A rename is atomic: a concurrent run either sees the whole folder or none (and a leftover without
        # the marker, from a killed run, is replaced).
        if folder.exists() and not (folder / _COMPLETE).exists():
            shutil.rmtree(folder)
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / _COMPLETE).exists():
                raise
    return folder / "pyflink"


def _download_wheel(version: str, into: Path) -> Path:
    return download_wheel("apache-flink", version, into, _WHEEL_TAG_ARGS, timeout=300)


def download_wheel(project: str, version: str, into: Path, tag_args: tuple[str, ...] = (),
                   timeout: float = 300) -> Path:
    """`pip download <project>==<version>` (no dependencies) into `into`; the wheel's path. Raises
    PyFlinkUnavailable, saying why, when pip cannot get it."""
    command = [sys.executable, "-m", "pip", "download", f"{project}=={version}", "--no-deps", *tag_args,
               "-d", str(into), "--retries", "1", "--timeout", "15", "--disable-pip-version-check", "--quiet"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PyFlinkUnavailable(f"pip download {project}=={version} did not run: {exc}") from exc
    wheels = sorted(into.glob(f"{project.replace('-', '_')}-*.whl")) if into.exists() else []
    if done.returncode != 0 or not wheels:
        last = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
        raise PyFlinkUnavailable(
            f"{project} {version} is not cached in {cache_folder(version).parent} and pip could not download it "
            f"(exit {done.returncode}): {last or 'no wheel'}")
    return wheels[0]


# --- the example programs --------------------------------------------------------------------------------

# Examples that need a broker or search cluster ha-flink has no connector for (and tests cannot start).
_EXTERNAL_SYSTEMS = ("kafka", "elasticsearch", "pulsar")


@dataclass(frozen=True, slots=True)
class ExampleNeeds:
    """What one PyFlink example program needs beyond `pyflink.datastream` and `pyflink.common`."""

    path: Path
    pyflink_modules: tuple[str, ...]  # every pyflink module it imports
    connectors: tuple[str, ...]  # pyflink.datastream.connectors.* modules
    table_api: bool  # imports pyflink.table
    options: tuple[str, ...]  # its command-line options (argparse), e.g. --input, --output


def pyflink_examples(source: Path | None = None) -> list[Path]:
    """PyFlink's DataStream example programs (pyflink/examples/datastream/ and below) that need no Kafka,
    Elasticsearch or Pulsar, sorted by path."""
    root = (source or pyflink_source()) / "examples" / "datastream"
    return [path for path in sorted(root.rglob("*.py"))
            if path.name != "__init__.py"
            and not any(system in module for module in example_needs(path).connectors for system in _EXTERNAL_SYSTEMS)]


def example_needs(path: Path) -> ExampleNeeds:
    tree = ast.parse(path.read_text(), str(path))
    modules: set[str] = set()
    options: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pyflink":
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names if alias.name.split(".")[0] == "pyflink")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "add_argument"):
            options.extend(arg.value for arg in node.args
                           if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
    connectors = sorted(m for m in modules if m.startswith("pyflink.datastream.connectors."))
    return ExampleNeeds(path, tuple(sorted(modules)), tuple(connectors),
                        any(m == "pyflink.table" or m.startswith("pyflink.table.") for m in modules), tuple(options))


# --- PyFlink's surface, from its source ------------------------------------------------------------------

ParamKind = inspect._ParameterKind  # the same enum on both sides: ast's arguments map onto inspect's kinds
MemberKind = Literal["method", "staticmethod", "classmethod", "property"]
NameKind = Literal["class", "function", "variable"]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: ParamKind
    has_default: bool
    java: bool = False  # PyFlink takes a Java object here (`j_...`, or annotated `JavaObject`)


@dataclass(frozen=True, slots=True)
class Signature:
    """A callable's parameters, without `self`/`cls`; `is_async` for `async def`."""

    params: tuple[Param, ...]
    is_async: bool = False

    def __str__(self) -> str:
        parts = []
        for p in self.params:
            prefix = {ParamKind.VAR_POSITIONAL: "*", ParamKind.VAR_KEYWORD: "**"}.get(p.kind, "")
            parts.append(prefix + p.name + ("=..." if p.has_default else ""))
        return "(" + ", ".join(parts) + ")"


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    kind: MemberKind
    signature: Signature
    defined_in: str  # the class (module.qualname) whose body defines it: the class itself or a base


@dataclass(slots=True)
class ClassInfo:
    origin: str  # module.qualname where PyFlink defines it
    bases: tuple[str, ...]  # the bases as written
    type_params: tuple[str, ...]  # Generic[IN, OUT, KEY, W] -> ("IN", "OUT", "KEY", "W"); () if not generic
    methods: dict[str, Method] = field(default_factory=dict)  # public ones and __init__, inherited included
    attributes: tuple[str, ...] = ()  # public class-body assignments (enum members, constants)
    nested: dict[str, ClassInfo] = field(default_factory=dict)  # public nested classes (ProcessFunction.Context)
    is_enum: bool = False

    def generic_text(self) -> str:
        return f"Generic[{', '.join(self.type_params)}]"


@dataclass(slots=True)
class PublicName:
    """One public name of one PyFlink module (`pyflink.datastream.DataStream`)."""

    path: str
    origin: str  # where it is defined (`pyflink.datastream.data_stream.DataStream`); == path if defined there
    kind: NameKind
    cls: ClassInfo | None = None
    function: Signature | None = None

    @property
    def module(self) -> str:
        return self.path.rsplit(".", 1)[0]


@dataclass(slots=True)
class Surface:
    """PyFlink's public API: the modules read and every public name of each, in that order."""

    version: str
    modules: tuple[str, ...]
    names: list[PublicName]

    def primary(self) -> dict[str, str]:
        """origin -> the public path its members are checked (and reported) under: the shortest path
        (`pyflink.datastream.DataStream` rather than `pyflink.datastream.data_stream.DataStream`)."""
        best: dict[str, str] = {}
        for name in self.names:
            current = best.get(name.origin)
            if current is None or name.path.count(".") < current.count("."):
                best[name.origin] = name.path
        return best

    def paths(self) -> dict[str, str]:
        """Every path the check looks at -> where PyFlink defines it: each public name, and the members and
        nested classes of each class under its primary path."""
        primary = self.primary()
        out: dict[str, str] = {}
        for name in self.names:
            out[name.path] = name.origin
            if name.cls is not None and primary[name.origin] == name.path:
                _member_paths(name.path, name.cls, out)
        return out


def _member_paths(path: str, cls: ClassInfo, out: dict[str, str]) -> None:
    for name in [*cls.methods, *cls.attributes]:
        out[f"{path}.{name}"] = f"{cls.origin}.{name}"
    for name, nested in cls.nested.items():
        out[f"{path}.{name}"] = nested.origin
        _member_paths(f"{path}.{name}", nested, out)


# The modules whose names are checked. Every module of the three packages except their internal helpers
# (`utils`: Java conversions), and of the connectors only the ones ha-flink implements in Python; the Java-only
# connectors still appear through `pyflink.datastream.connectors`' re-exports, and left_out.toml names them.
_PACKAGES = ("pyflink.datastream", "pyflink.common", "pyflink.metrics")
_CONNECTOR_MODULES = ("base", "file_system", "number_seq", "datagen")
_HELPER_MODULES = ("utils",)


def surface_modules(source: Path) -> tuple[str, ...]:
    """The PyFlink modules read, packages first (their paths are the shorter, the primary ones)."""
    modules = list(_PACKAGES)
    modules.insert(1, "pyflink.datastream.connectors")
    for package in _PACKAGES:
        folder = source.parent.joinpath(*package.split("."))
        modules.extend(f"{package}.{path.stem}" for path in sorted(folder.glob("*.py"))
                       if path.stem != "__init__" and path.stem not in _HELPER_MODULES)
    connectors = source / "datastream" / "connectors"
    modules.extend(f"pyflink.datastream.connectors.{stem}" for stem in _CONNECTOR_MODULES
                   if (connectors / f"{stem}.py").exists())
    return tuple(modules)


def read_surface(source: Path | None = None, modules: tuple[str, ...] | None = None) -> Surface:
    """PyFlink's public API from the wheel's source (nothing of PyFlink is imported)."""
    source = source or pyflink_source()
    index = _SourceIndex(source.parent)
    modules = modules or surface_modules(source)
    names: list[PublicName] = []
    for module in modules:
        for name in index.public_names(module):
            names.append(index.describe(module, name))
    return Surface(_version(source), modules, names)


def _version(source: Path) -> str:
    tree = ast.parse((source / "version.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets):
                return str(node.value.value)
    return PYFLINK_VERSION


@dataclass(slots=True)
class _Module:
    name: str
    is_package: bool
    tree: ast.Module
    defined: dict[str, ast.AST]  # top-level classes, functions, assignments (the value node's statement)
    imported: dict[str, tuple[str, str | None]]  # local name -> (module, attribute or None for a module)
    all_names: list[str] | None  # __all__, if the module has one
    installed: dict[str, tuple[str, str]]  # names an `_install()` setattr()s onto the package -> (module, name)


_DEFINITIONS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


class _SourceIndex:
    """The parsed modules under one root, resolving names across imports (parsed on demand)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._modules: dict[str, _Module | None] = {}
        self._classes: dict[str, ClassInfo] = {}

    def module(self, name: str) -> _Module | None:
        if name not in self._modules:
            self._modules[name] = self._parse(name)
        return self._modules[name]

    def _parse(self, name: str) -> _Module | None:
        base = self.root.joinpath(*name.split("."))
        is_package = (base / "__init__.py").exists()
        path = base / "__init__.py" if is_package else base.with_suffix(".py")
        if not path.exists():
            return None
        tree = ast.parse(path.read_text(), str(path))
        package = name if is_package else name.rsplit(".", 1)[0]
        defined: dict[str, ast.AST] = {}
        imported: dict[str, tuple[str, str | None]] = {}
        all_names: list[str] | None = None
        installed: dict[str, tuple[str, str]] = {}
        for node in _top_level(tree.body):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                defined[node.name] = node
                if node.name == "_install" and isinstance(node, ast.FunctionDef):
                    installed.update(_installed_names(node, package))
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node, package)
                for alias in node.names:
                    imported[alias.asname or alias.name] = (source, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        imported[alias.asname] = (alias.name, None)
                    else:
                        imported[alias.name.split(".")[0]] = (alias.name.split(".")[0], None)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        if target.id == "__all__":
                            values = _string_list(node.value)
                            all_names = values if not isinstance(node, ast.AugAssign) else [*(all_names or []), *values]
                        else:
                            defined[target.id] = node
        return _Module(name, is_package, tree, defined, imported, all_names, installed)

    def public_names(self, module: str) -> list[str]:
        parsed = self.module(module)
        if parsed is None:
            raise ValueError(f"PyFlink has no module {module}")
        if parsed.all_names is not None:
            names = list(parsed.all_names)
        else:
            # No __all__: the public classes and functions the module itself defines (not what it imports).
            names = [n for n, node in parsed.defined.items()
                     if not n.startswith("_") and isinstance(node, _DEFINITIONS)]
        # dict.fromkeys: PyFlink's data_stream.__all__ lists CloseableIterator twice.
        return list(dict.fromkeys(names + list(parsed.installed)))

    def resolve(self, module: str, name: str,
                seen: frozenset[tuple[str, str]] = frozenset()) -> tuple[str, ast.AST | None]:
        """(defining module, its node) for `name` as seen in `module`; (module.name, None) if it is a module
        or cannot be followed (outside the wheel)."""
        if (module, name) in seen:
            return module, None
        seen = seen | {(module, name)}
        parsed = self.module(module)
        if parsed is None:
            return module, None
        if name in parsed.defined:
            return module, parsed.defined[name]
        if name in parsed.installed:
            return self.resolve(*parsed.installed[name], seen)
        if name in parsed.imported:
            source, attribute = parsed.imported[name]
            if attribute is None:
                return source, None
            submodule = self.module(f"{source}.{attribute}") is not None
            if submodule and attribute not in (self.module(source) or parsed).defined:
                return f"{source}.{attribute}", None
            return self.resolve(source, attribute, seen)
        if parsed.is_package and self.module(f"{module}.{name}") is not None:
            return f"{module}.{name}", None
        return module, None

    def describe(self, module: str, name: str) -> PublicName:
        origin_module, node = self.resolve(module, name)
        path = f"{module}.{name}"
        if isinstance(node, ast.ClassDef):
            return PublicName(path, f"{origin_module}.{node.name}", "class", cls=self.class_info(origin_module, node))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return PublicName(path, f"{origin_module}.{node.name}", "function",
                              function=_signature(node, drop_first=False))
        return PublicName(path, f"{origin_module}.{name}" if node is not None else path, "variable")

    def class_info(self, module: str, node: ast.ClassDef, outer: str = "",
                   scope: dict[str, ClassInfo] | None = None) -> ClassInfo:
        """The class `node` of `module`; `outer` and `scope` (the nested classes defined before it) for a
        nested class, whose bases may name its siblings (`class OnTimerContext(Context)`)."""
        qualname = f"{outer}.{node.name}" if outer else node.name
        origin = f"{module}.{qualname}"
        if origin in self._classes:
            return self._classes[origin]
        info = ClassInfo(origin, tuple(ast.unparse(b) for b in node.bases), self._type_params(module, node))
        self._classes[origin] = info  # before the bases: a cycle (never in PyFlink) then ends here
        attributes: list[str] = []
        for statement in node.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                member = _member(statement, origin)
                if member is not None and (not statement.name.startswith("_") or statement.name == "__init__"):
                    # A property's setter (same name) keeps it a property; a later plain def replaces.
                    if not (member.kind == "property" and statement.name in info.methods and _is_setter(statement)):
                        info.methods[statement.name] = member
            elif isinstance(statement, ast.ClassDef) and not statement.name.startswith("_"):
                info.nested[statement.name] = self.class_info(module, statement, qualname, info.nested)
            elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
                targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                attributes.extend(t.id for t in targets if isinstance(t, ast.Name) and not t.id.startswith("_"))
        info.is_enum = any(base.split(".")[-1] in ("Enum", "IntEnum") for base in info.bases)
        # Inherited members, bases in order (what Python's MRO gives for PyFlink's single-line hierarchies).
        for base in node.bases:
            base_info = self._base_class(module, base, scope or {})
            if base_info is None:
                continue
            info.is_enum = info.is_enum or base_info.is_enum
            for name, method in base_info.methods.items():
                info.methods.setdefault(name, method)
            attributes.extend(a for a in base_info.attributes if a not in attributes)
            for name, nested in base_info.nested.items():
                info.nested.setdefault(name, nested)
        info.attributes = tuple(dict.fromkeys(a for a in attributes if a not in info.methods and a not in info.nested))
        return info

    def _base_class(self, module: str, base: ast.expr, scope: dict[str, ClassInfo]) -> ClassInfo | None:
        """The parsed base class, or None for one outside the wheel (ABC, Enum, Generic, object)."""
        if isinstance(base, ast.Subscript):
            base = base.value
        parts: list[str] = []
        while isinstance(base, ast.Attribute):
            parts.insert(0, base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            return None
        info: ClassInfo | None = scope.get(base.id)
        if info is None:
            origin_module, node = self.resolve(module, base.id)
            if not isinstance(node, ast.ClassDef):
                return None
            info = self.class_info(origin_module, node)
        for part in parts:  # `BaseBroadcastProcessFunction.Context`: a nested class of a resolved class
            info = info.nested.get(part) if info is not None else None
        return info

    def _type_params(self, module: str, node: ast.ClassDef) -> tuple[str, ...]:
        for base in node.bases:
            if isinstance(base, ast.Subscript) and _name_of(base.value) in ("Generic", "typing.Generic"):
                return tuple(_names_in(base.slice))
        # No Generic[...]: typing makes the class generic in the TypeVars of its subscripted bases.
        found: list[str] = []
        for base in node.bases:
            if isinstance(base, ast.Subscript):
                for name in _names_in(base.slice):
                    if name not in found and self._is_typevar(module, name):
                        found.append(name)
        return tuple(found)

    def _is_typevar(self, module: str, name: str) -> bool:
        _, node = self.resolve(module, name)
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        return isinstance(value, ast.Call) and _name_of(value.func) in ("TypeVar", "typing.TypeVar")


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module statements, with those inside top-level `if`/`try` blocks (conditional imports, fallbacks)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            out.extend(_top_level(node.body + node.orelse))
        elif isinstance(node, ast.Try):
            out.extend(_top_level(node.body + node.orelse + node.finalbody))
        else:
            out.append(node)
    return out


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _installed_names(function: ast.FunctionDef | ast.AsyncFunctionDef, package: str) -> dict[str, tuple[str, str]]:
    """`setattr(connectors, 'FileSink', file_system.FileSink)` inside a package's `_install()`: PyFlink's way of
    putting names on a package (`from pyflink.datastream.connectors import FileSink`) outside `__all__`."""
    local_modules: dict[str, str] = {}
    found: dict[str, tuple[str, str]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, package)
            for alias in node.names:
                local_modules[alias.asname or alias.name] = f"{source}.{alias.name}"
    for node in ast.walk(function):
        if (isinstance(node, ast.Call) and _name_of(node.func) == "setattr" and len(node.args) == 3
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            value = node.args[2]
            if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
                found[node.args[1].value] = (local_modules.get(value.value.id, value.value.id), value.attr)
            elif isinstance(value, ast.Name) and value.id in local_modules:
                source, _, attribute = local_modules[value.id].rpartition(".")
                found[node.args[1].value] = (source, attribute)
    return found


def _string_list(node: ast.expr | None) -> list[str]:
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _string_list(node.left) + _string_list(node.right)
    return []


def _name_of(node: ast.expr) -> str:
    return ast.unparse(node)


def _names_in(node: ast.expr) -> list[str]:
    """The plain names in a subscript's slice, in source order (`Iterable[IN], OUT` -> IN, OUT)."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Tuple):
        return [n for e in node.elts for n in _names_in(e)]
    if isinstance(node, ast.Subscript):
        return _names_in(node.slice)
    return []


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [_name_of(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list]


def _is_setter(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(d.endswith((".setter", ".deleter")) for d in _decorators(node))


def _member(node: ast.FunctionDef | ast.AsyncFunctionDef, origin: str) -> Method | None:
    decorators = _decorators(node)
    if any(d in ("overload", "typing.overload") for d in decorators):
        return None  # the implementation that follows is what runs
    kind: MemberKind = "method"
    if "staticmethod" in decorators:
        kind = "staticmethod"
    elif "classmethod" in decorators:
        kind = "classmethod"
    elif "property" in decorators or any(d.endswith((".setter", ".deleter", "cached_property")) for d in decorators):
        kind = "property"
    return Method(node.name, kind, _signature(node, drop_first=kind != "staticmethod"), origin)


def _is_java(arg: ast.arg) -> bool:
    return arg.arg.startswith("j_") or (arg.annotation is not None and "JavaObject" in ast.unparse(arg.annotation))


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, drop_first: bool) -> Signature:
    args = node.args
    positional = [(a, ParamKind.POSITIONAL_ONLY) for a in args.posonlyargs] + \
                 [(a, ParamKind.POSITIONAL_OR_KEYWORD) for a in args.args]
    first_default = len(positional) - len(args.defaults)
    params = [Param(a.arg, kind, i >= first_default, _is_java(a)) for i, (a, kind) in enumerate(positional)]
    if drop_first and params:
        params = params[1:]
    if args.vararg:
        params.append(Param(args.vararg.arg, ParamKind.VAR_POSITIONAL, False))
    params.extend(Param(a.arg, ParamKind.KEYWORD_ONLY, d is not None, _is_java(a))
                  for a, d in zip(args.kwonlyargs, args.kw_defaults))
    if args.kwarg:
        params.append(Param(args.kwarg.arg, ParamKind.VAR_KEYWORD, False))
    return Signature(tuple(params), isinstance(node, ast.AsyncFunctionDef))


# --- ha-flink against it ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Difference:
    """One way ha-flink differs from PyFlink at `path` (a PyFlink path); `origin` is where PyFlink defines
    the thing, so a left-out entry may name either (`pyflink.datastream.connectors.kafka` covers the Kafka
    names `pyflink.datastream.connectors` re-exports)."""

    path: str
    message: str
    origin: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def ours(path: str) -> str:
    """The ha-flink path for a PyFlink one."""
    return "ha_flink" + path[len("pyflink"):] if path.startswith("pyflink") else path


def compare(surface: Surface) -> list[Difference]:
    """Every difference of ha-flink from `surface`, sorted; each PyFlink class's members are checked once,
    under its primary (shortest) public path; its other paths must give the same object."""
    primary = surface.primary()
    found: list[Difference] = []
    modules: dict[str, Any] = {}
    for name in surface.names:
        module = name.module
        if module not in modules:
            modules[module] = _import(module)
        loaded = modules[module]
        if isinstance(loaded, str):
            found.append(Difference(name.path, f"missing ({loaded})", name.origin))
            continue
        if not hasattr(loaded, name.path.rsplit(".", 1)[1]):
            found.append(Difference(name.path, "missing", name.origin))
            continue
        value = getattr(loaded, name.path.rsplit(".", 1)[1])
        main = primary[name.origin]
        if main != name.path:
            # A re-export: its members are those of the primary path (checked there, or reported missing
            # there until it exists); here only that it is the same object, as in PyFlink.
            other = _lookup(main, modules)
            if other is not None and other is not value and name.kind != "variable":
                found.append(Difference(name.path, f"is not the same object as {ours(main)}", name.origin))
            continue
        if name.kind == "class":
            assert name.cls is not None
            if not inspect.isclass(value):
                found.append(Difference(name.path, "is not a class (PyFlink: a class)", name.origin))
            else:
                found.extend(_compare_class(name.path, name.cls, value))
        elif name.kind == "function":
            assert name.function is not None
            if inspect.isclass(value) or not callable(value):
                found.append(Difference(name.path, "is not a function", name.origin))
            else:
                found.extend(Difference(name.path, m, name.origin)
                             for m in _compare_signature(name.function, _signature_of(value, 0)))
    return sorted(found)


def _import(module: str) -> Any:
    """The ha-flink module, or why not (a string): a missing module is a difference, not an error."""
    name = ours(module)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return f"no module {exc.name}"
        raise


def _lookup(path: str, modules: dict[str, Any]) -> Any:
    module, _, attribute = path.rpartition(".")
    loaded = modules.get(module)
    if loaded is None:
        loaded = modules[module] = _import(module)
    return None if isinstance(loaded, str) else getattr(loaded, attribute, None)


def _compare_class(path: str, info: ClassInfo, cls: type) -> list[Difference]:
    found: list[Difference] = []
    if info.type_params:
        problem = _subscript_problem(cls, len(info.type_params))
        if problem:
            found.append(Difference(path, f"{problem} (PyFlink: {info.generic_text()})", info.origin))
    for name, method in sorted(info.methods.items()):
        member_path, origin = f"{path}.{name}", f"{info.origin}.{name}"
        if name == "__init__" and _takes_java_object(method.signature):
            # PyFlink's constructor wraps a Java object (`j_data_stream`, `source_func: JavaObject`): user code
            # gets these objects from factories, or cannot make them without a JVM, so ha-flink's own
            # constructor is no difference.
            continue
        kind, signature = _member_of(cls, name)
        if name == "__init__" and kind is not None:
            # What `Cls(...)` accepts, whether the class defines __init__, inherits it or only has object's.
            signature = _signature_of(cls, 0)
        if kind is None:
            found.append(Difference(member_path, "missing", origin))
            continue
        if _kind_group(kind) != _kind_group(method.kind):
            found.append(Difference(member_path, f"is {_KIND_TEXT[kind]} (PyFlink: {_KIND_TEXT[method.kind]})", origin))
            continue
        if method.kind == "property" or signature is None:
            continue
        found.extend(Difference(member_path, m, origin) for m in _compare_signature(method.signature, signature))
    for name in info.attributes:
        if not hasattr(cls, name):
            found.append(Difference(f"{path}.{name}", "missing", f"{info.origin}.{name}"))
    for name, nested in sorted(info.nested.items()):
        value = getattr(cls, name, None)
        if value is None:
            found.append(Difference(f"{path}.{name}", "missing", nested.origin))
        elif not inspect.isclass(value):
            found.append(Difference(f"{path}.{name}", "is not a class (PyFlink: nested class)", nested.origin))
        else:
            found.extend(_compare_class(f"{path}.{name}", nested, value))
    return found


def _takes_java_object(signature: Signature) -> bool:
    return any(p.java for p in signature.params)


_KIND_TEXT: dict[str, str] = {"method": "an instance method", "staticmethod": "a static method",
                              "classmethod": "a class method", "property": "a property", "other": "not callable"}


def _kind_group(kind: str) -> str:
    # A static method and a class method are called alike (`Types.STRING()`), so either stands for the other.
    return "static" if kind in ("staticmethod", "classmethod") else kind


def _member_of(cls: type, name: str) -> tuple[str | None, Signature | None]:
    """(kind, signature without self/cls) of `cls.name` in ha-flink; (None, None) if there is none."""
    raw: Any = None
    for klass in cls.__mro__:
        if name in vars(klass):
            raw = vars(klass)[name]
            break
    else:
        if not hasattr(cls, name):
            return None, None
        value = getattr(cls, name)
        return ("method", _signature_of(value, 0)) if callable(value) else ("other", None)
    if isinstance(raw, staticmethod):
        return "staticmethod", _signature_of(raw.__func__, 0)
    if isinstance(raw, classmethod):
        return "classmethod", _signature_of(raw.__func__, 1)
    if isinstance(raw, property) or (hasattr(raw, "__get__") and not callable(raw)):
        return "property", None
    if inspect.isfunction(raw):
        return "method", _signature_of(raw, 1)
    if callable(raw):  # a builtin or callable object placed on the class: called as it is
        return "method", _signature_of(getattr(cls, name), 0)
    return "other", None


def _signature_of(value: Any, drop: int) -> Signature | None:
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return None  # a builtin without a text signature: nothing to compare
    params = [Param(p.name, p.kind, p.default is not inspect.Parameter.empty)
              for p in list(signature.parameters.values())[drop:]]
    return Signature(tuple(params), inspect.iscoroutinefunction(inspect.unwrap(value)))


def _compare_signature(theirs: Signature, mine: Signature | None) -> list[str]:
    """What a call that works on PyFlink's signature would find wrong with ours. Extra optional parameters,
    defaults we add and *args/**kwargs we add are fine."""
    if mine is None:
        return []
    problems: list[str] = []
    if theirs.is_async and not mine.is_async:
        problems.append("is not `async def` (PyFlink: async def)")
    positional = [p for p in mine.params if p.kind in (ParamKind.POSITIONAL_ONLY, ParamKind.POSITIONAL_OR_KEYWORD)]
    by_name = {p.name: p for p in mine.params if p.kind not in (ParamKind.VAR_POSITIONAL, ParamKind.VAR_KEYWORD)}
    var_positional = any(p.kind is ParamKind.VAR_POSITIONAL for p in mine.params)
    var_keyword = any(p.kind is ParamKind.VAR_KEYWORD for p in mine.params)
    matched: set[str] = set()
    their_positional = [p for p in theirs.params
                        if p.kind in (ParamKind.POSITIONAL_ONLY, ParamKind.POSITIONAL_OR_KEYWORD)]
    for i, p in enumerate(their_positional):
        if p.kind is ParamKind.POSITIONAL_ONLY:  # only its position counts
            if i < len(positional):
                matched.add(positional[i].name)
                problems.extend(_required(p, positional[i]))
            elif not var_positional:
                problems.append(f"parameter '{p.name}' missing")
            continue
        q = by_name.get(p.name)
        if q is None:
            if var_positional and var_keyword:
                continue
            in_place = positional[i].name if i < len(positional) and positional[i].name not in {
                t.name for t in theirs.params} else None
            instead = f" (ha-flink has '{in_place}' in its place)" if in_place else ""
            problems.append(f"parameter '{p.name}' missing{instead}")
            if in_place:
                matched.add(in_place)
            continue
        matched.add(q.name)
        if q.kind is ParamKind.KEYWORD_ONLY:
            problems.append(f"parameter '{p.name}' is keyword-only (PyFlink: positional {i + 1})")
        elif q.kind is ParamKind.POSITIONAL_ONLY:
            problems.append(f"parameter '{p.name}' is positional-only")
        elif positional.index(q) != i:
            problems.append(f"parameter '{p.name}' is positional {positional.index(q) + 1} (PyFlink: {i + 1})")
        problems.extend(_required(p, q))
    for p in theirs.params:
        if p.kind is ParamKind.KEYWORD_ONLY:
            q = by_name.get(p.name)
            if q is None:
                if not var_keyword:
                    problems.append(f"parameter '{p.name}' missing")
                continue
            matched.add(q.name)
            if q.kind is ParamKind.POSITIONAL_ONLY:
                problems.append(f"parameter '{p.name}' is positional-only (PyFlink: keyword-only)")
            problems.extend(_required(p, q))
        elif p.kind is ParamKind.VAR_POSITIONAL and not var_positional:
            problems.append(f"accepts no *args (PyFlink: *{p.name})")
        elif p.kind is ParamKind.VAR_KEYWORD and not var_keyword:
            problems.append(f"accepts no **kwargs (PyFlink: **{p.name})")
    for q in mine.params:
        variadic = q.kind in (ParamKind.VAR_POSITIONAL, ParamKind.VAR_KEYWORD)
        if q.name not in matched and not q.has_default and not variadic:
            problems.append(f"extra required parameter '{q.name}'")
    return problems


def _required(p: Param, q: Param) -> list[str]:
    if p.has_default and not q.has_default and q.kind not in (ParamKind.VAR_POSITIONAL, ParamKind.VAR_KEYWORD):
        return [f"parameter '{p.name}' is required (PyFlink: optional)"]
    return []


def _subscript_problem(cls: type, count: int) -> str | None:
    """Why `cls[int, ...]` (count arguments) fails, or None if it works."""
    arguments: Any = int if count == 1 else (int,) * count
    try:
        cls[arguments]  # type: ignore[index]
    except TypeError:
        parameters = getattr(cls, "__parameters__", ())
        if parameters:
            return f"takes {len(parameters)} type parameters, not {count}"
        return "not subscriptable"
    return None
