"""The plugin manager and the registry of components it fills.

Built-ins are registered as the plugin module :mod:`xite.builtins`; third-party plugins are
loaded from the ``xite`` entry-point group. Both go through the same ``register_*`` hooks.

Every third-party plugin is loaded inside its own guard: one that fails to import, whose hook
raises, that registers a name another package already has (without ``override=True``), or whose
component class misses part of its kind's contract (:mod:`xite.contracts`) is skipped as a whole
and reported by ``xite plugins`` / ``xite doctor``; everything else keeps working.

``XITE_LOAD_PLUGINS=name1,name2`` loads only those entry points (entry-point or distribution
names); ``XITE_LOAD_PLUGINS=`` (empty) loads none. Unset, every installed plugin loads.
"""

from __future__ import annotations

from contextlib import contextmanager

import importlib.metadata
import os
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pluggy

from xite import hookspecs
from xite.contracts import KINDS, component_class, contract_violation
from xite.errors import ConfigError, UnknownComponentError, XiteError

ENV_VAR = "XITE_LOAD_PLUGINS"
BUILTINS = "xite.builtins"


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    factory: Callable[..., Any]
    package: str  # the distribution (or module, for unpackaged plugins) that registered it
    version: str = ""
    plugin: str = ""  # the plugin's name in the manager (its entry-point name)
    replaces: str | None = None  # the package whose registration this one overrides on purpose


@dataclass
class PluginReport:
    """One plugin as ``xite plugins`` shows it: what it registered, or why it was skipped."""

    name: str
    package: str
    version: str
    error: str | None = None  # one line; None when the plugin loaded
    components: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    commands: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class _PluginFailed(Exception):
    """Internal: a plugin must be skipped; the message is the one line users see."""


_pm: pluggy.PluginManager | None = None
_registry: dict[str, dict[str, Registration]] | None = None
_reports: dict[str, PluginReport] = {}
_origins: dict[int, tuple[str, str]] = {}  # id(plugin object) -> (package, version)
# Commands each plugin added to a Typer app, so that a second install (after reset()) first
# takes the old ones out instead of reporting them as clashes with themselves.
_installed_commands: "weakref.WeakKeyDictionary[Any, list]" = weakref.WeakKeyDictionary()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _selected_names() -> set[str] | None:
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return None
    return {_normalise(n) for n in raw.split(",") if n.strip()}


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    found = []
    for ep in importlib.metadata.entry_points(group="xite"):
        dist = ep.dist.name if ep.dist is not None else ep.module
        key = (_normalise(dist), ep.name)
        # The same distribution can be visible twice on sys.path (an editable install next to a
        # stale copy): load it once.
        if key in seen:
            continue
        seen.add(key)
        found.append(ep)
    # A fixed order makes "which of two clashing plugins loaded first" the same on every machine.
    return sorted(found, key=lambda ep: (_normalise(ep.dist.name if ep.dist else ep.module), ep.name))


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    wanted = _selected_names()
    matched: set[str] = set()
    for ep in _entry_points():
        package = ep.dist.name if ep.dist is not None else ep.module.split(".")[0]
        version = ep.dist.version if ep.dist is not None else ""
        if wanted is not None:
            names = {_normalise(ep.name), _normalise(package)}
            if not names & wanted:
                continue
            matched |= names & wanted
        report = PluginReport(ep.name, package, version)
        # Two packages may use one entry-point name; the second then fails to register, and its
        # report must not replace the first one's.
        _reports[ep.name if ep.name not in _reports else f"{package}:{ep.name}"] = report
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not take xite down with it
            report.error = f"cannot import {ep.value}: {_one_line(exc)}"
            continue
        try:
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # pluggy's validation, or a name/module registered twice
            report.error = f"not registered: {_one_line(exc)}"
            continue
        _origins[id(plugin)] = (package, version)
        unknown = [c.name for c in pm.get_hookcallers(plugin) or [] if c.spec is None]
        if unknown:
            pm.unregister(plugin)
            report.error = (
                f"implements {', '.join(sorted(unknown))}, which xite does not have "
                f"(its hooks: {', '.join(_hook_names())})"
            )
    for name in sorted((wanted or set()) - matched):
        _reports[name] = PluginReport(
            name, name, "", error=f"{ENV_VAR} names it, but no installed package has a 'xite' entry point of that name"
        )


def _hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("register_"))


def get_plugin_manager() -> pluggy.PluginManager:
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("xite")
        pm.add_hookspecs(hookspecs)
        from xite import __version__, builtins

        pm.register(builtins, name=BUILTINS)
        _origins[id(builtins)] = ("xite", __version__)
        _reports[BUILTINS] = PluginReport(BUILTINS, "xite", __version__)  # listed first
        _load_entry_points(pm)
        _pm = pm
    return _pm


def _origin(plugin: object, plugin_name: str) -> tuple[str, str]:
    if id(plugin) in _origins:
        return _origins[id(plugin)]
    module = getattr(plugin, "__name__", type(plugin).__name__)
    return module.split(".")[0], str(getattr(plugin, "__version__", ""))


def _report_for(plugin: object, plugin_name: str) -> PluginReport:
    if plugin_name not in _reports:
        package, version = _origin(plugin, plugin_name)
        _reports[plugin_name] = PluginReport(plugin_name, package, version)
    return _reports[plugin_name]


def _impls_by_plugin(pm: pluggy.PluginManager, hook_name: str) -> dict[str, list]:
    by_plugin: dict[str, list] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        by_plugin.setdefault(impl.plugin_name, []).append(impl)
    return by_plugin


def _staged_registrations(pm: pluggy.PluginManager, plugin_name: str, report: PluginReport, impls: dict) -> list:
    """Run one plugin's register_* hooks; return what it asked to register, unchecked."""
    staged: list[tuple[str, str, Any, bool]] = []
    for kind in KINDS:
        for impl in impls[kind].get(plugin_name, []):

            def register(name: str, factory: Callable[..., Any], *, override: bool = False, _kind=kind) -> None:
                staged.append((_kind, name, factory, bool(override)))
                report.components.append((_kind[:-1], str(name)))

            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except Exception as exc:
                raise _PluginFailed(f"register_{kind} raised {_one_line(exc)}") from exc
    return staged


def _checked(staged: list, registry: dict, package: str, version: str, plugin_name: str) -> list[Registration]:
    accepted: list[Registration] = []
    own: set[tuple[str, str]] = set()
    for kind, name, factory, override in staged:
        what = f"{kind[:-1]} {name!r}"
        if not isinstance(name, str) or not name or name != name.strip():
            raise _PluginFailed(f"{what}: a component name must be a non-empty string without surrounding spaces")
        if (kind, name) in own:
            raise _PluginFailed(f"{what} is registered twice by {package}")
        own.add((kind, name))
        problem = contract_violation(kind, factory)
        if problem:
            raise _PluginFailed(f"{what}: {problem}")
        earlier = registry[kind].get(name)
        if earlier is not None and not override:
            raise _PluginFailed(
                f"{what} is already registered by {earlier.package}; both {earlier.package} and {package} "
                f"register it (register(name, cls, override=True) replaces it on purpose)"
            )
        accepted.append(
            Registration(kind, name, factory, package, version, plugin_name,
                         replaces=earlier.package if earlier is not None else None)
        )
    return accepted


def _build_registry(pm: pluggy.PluginManager) -> dict[str, dict[str, Registration]]:
    registry: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
    impls = {kind: _impls_by_plugin(pm, f"register_{kind}") for kind in KINDS}
    # list_name_plugin keeps registration order: built-ins first, then the sorted entry points.
    for plugin_name, plugin in list(pm.list_name_plugin()):
        if plugin is None:
            continue
        report = _report_for(plugin, plugin_name)
        report.components.clear()
        try:
            staged = _staged_registrations(pm, plugin_name, report, impls)
            accepted = _checked(staged, registry, report.package, report.version, plugin_name)
        except _PluginFailed as failure:
            if plugin_name == BUILTINS:
                raise RuntimeError(f"xite's built-in components failed to register: {failure}") from failure
            report.error = str(failure)
            pm.unregister(plugin)  # so that its register_commands hook is not called either
            continue
        for reg in accepted:
            registry[reg.kind][reg.name] = reg
    return registry


def registry() -> dict[str, dict[str, Registration]]:
    global _registry
    if _registry is None:
        _registry = _build_registry(get_plugin_manager())
    return _registry


def reset() -> None:
    """Forget the loaded plugins (tests register plugins of their own, or change XITE_LOAD_PLUGINS)."""
    global _pm, _registry
    _pm = None
    _registry = None
    _reports.clear()
    _origins.clear()


def reports() -> list[PluginReport]:
    """Every plugin xite tried to load (built-ins first), loaded or not."""
    registry()
    return list(_reports.values())


def failed_plugins() -> list[PluginReport]:
    return [r for r in reports() if not r.ok]


def plural_kind(kind: str) -> str:
    """'encoder' or 'encoders' -> 'encoders'; ConfigError for a kind xite does not have."""
    plural = kind if kind.endswith("s") else kind + "s"
    if plural not in KINDS:
        raise ConfigError(f"unknown component kind {kind!r}; kinds: {', '.join(k[:-1] for k in KINDS)}")
    return plural


def _failed_owner(kind: str, name: str) -> PluginReport | None:
    candidates = {name}
    if ":" in name:
        candidates.add(name.split(":", 1)[0] + ":")
    for report in failed_plugins():
        if any(k == kind[:-1] and n in candidates for k, n in report.components):
            return report
    return None


def lookup(kind: str, name: str) -> tuple[Registration, dict[str, Any]]:
    """Find a component by name. Returns its registration and any options the name implies
    (``hf:PATH`` -> ``{"spec": "PATH"}``)."""
    kind = plural_kind(kind)
    regs = registry()[kind]
    if name in regs:
        return regs[name], {}
    if ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix + ":" in regs and rest:
            return regs[prefix + ":"], {"spec": rest}
    singular = kind[:-1]
    owner = _failed_owner(kind, name)
    if owner is not None:
        raise UnknownComponentError(
            f"{singular} '{name}' comes from plugin {owner.package}, which failed to load: {owner.error}"
        )
    known = ", ".join(f"{n} ({r.package})" for n, r in sorted(regs.items())) or "none"
    message = f"unknown {singular} '{name}'; registered {kind}: {known}"
    failed = failed_plugins()
    if failed:
        message += "; plugins that failed to load: " + "; ".join(f"{r.package} ({r.error})" for r in failed)
    raise UnknownComponentError(message)


def create(kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Instantiate a component with its options.

    Options are checked and converted against the constructor's annotations first
    (:func:`xite.options.coerce`). A ConfigError from the component is the user's to fix and stays
    one line; any other exception is a bug in the component, so it keeps its traceback and gains a
    note naming the component and its package.
    """
    from xite.options import coerce

    kind = plural_kind(kind)
    reg, implied = lookup(kind, name)
    given = {k: v for k, v in (options or {}).items() if v is not None}
    opts = coerce(kind, name, {**implied, **given})
    with blame(kind, name, reg):
        return reg.factory(**opts)


@contextmanager
def blame(kind: str, name: str, reg: Registration | None = None) -> Iterator[None]:
    """Run a component's code (its constructor, or a stage calling it). A ConfigError is the
    user's to fix: one line naming the component. Other xite errors pass as they are. Anything
    else is a bug in the component: it keeps its traceback and gains a note naming the component
    and the package to report it to."""
    kind = plural_kind(kind)
    label = f"{kind[:-1]} '{name}'"
    try:
        yield
    except XiteError as exc:
        if str(exc).startswith(label) or not isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{label}: {exc}") from exc
    except Exception as exc:
        exc.add_note(_bug_note(label, kind, name, reg))
        raise


def _bug_note(label: str, kind: str, name: str, reg: Registration | None) -> str:
    if reg is None:
        try:
            reg = lookup(kind, name)[0]
        except XiteError:
            return f"xite: this is a bug in {label}; please report it to that component's authors"
    cls = component_class(reg.factory)
    where = f"{cls.__module__}.{cls.__qualname__}" if cls is not None else repr(reg.factory)
    return (f"xite: this is a bug in {label} ({where}) of package {reg.package} {reg.version}".rstrip()
            + "; please report it to that package's authors")


def describe() -> list[tuple[str, str, str]]:
    """(kind, name, package) for every registered component, for ``xite plugins``."""
    return [(reg.kind[:-1], reg.name, reg.package) for reg in components()]


def components() -> list[Registration]:
    """Every registered component, by kind then name."""
    return [reg for kind, regs in registry().items() for _, reg in sorted(regs.items())]


# -- commands ---------------------------------------------------------------------------------


def _command_name(info: Any) -> str:
    name = getattr(info, "name", None)
    if not name:
        callback = getattr(info, "callback", None)
        typer_instance = getattr(info, "typer_instance", None)
        if callback is not None:
            name = callback.__name__
        elif typer_instance is not None and typer_instance.info.name:
            name = typer_instance.info.name
        else:
            name = "?"
    return name.lower().replace("_", "-")


def install_commands(app: Any) -> None:
    """Let every loaded plugin add commands to the Typer ``app`` (hook ``register_commands``).

    A plugin whose hook raises, or that adds a command name that already exists, is skipped as a
    whole: its commands are taken out again and its components unregistered.
    """
    global _registry
    pm = get_plugin_manager()
    registry()
    for info_list, info in _installed_commands.pop(app, []):
        if info in info_list:
            info_list.remove(info)
    added_here: list = []
    impls = _impls_by_plugin(pm, "register_commands")
    for plugin_name, plugin in list(pm.list_name_plugin()):
        if plugin is None or plugin_name not in impls:
            continue
        report = _report_for(plugin, plugin_name)
        report.commands.clear()
        before = {id(i) for i in app.registered_commands + app.registered_groups}
        taken = {_command_name(i) for i in app.registered_commands + app.registered_groups}
        try:
            for impl in impls[plugin_name]:
                impl.function(**{arg: app for arg in impl.argnames})
            new = [(lst, i) for lst in (app.registered_commands, app.registered_groups) for i in lst if id(i) not in before]
            clashes = sorted({_command_name(i) for _, i in new} & taken)
            if clashes:
                raise _PluginFailed(f"register_commands adds {', '.join(clashes)}, which xite already has")
        except Exception as exc:
            for lst, info in [(lst, i) for lst in (app.registered_commands, app.registered_groups) for i in list(lst)]:
                if id(info) not in before:
                    lst.remove(info)
            report.error = str(exc) if isinstance(exc, _PluginFailed) else f"register_commands raised {_one_line(exc)}"
            pm.unregister(plugin)
            # Rebuilt without it, so that a built-in it overrode comes back.
            _registry = _build_registry(pm)
            continue
        report.commands = sorted(_command_name(i) for _, i in new)
        added_here.extend(new)
    _installed_commands[app] = added_here
