"""The plugin manager and the registry of components it fills.

Built-ins are registered as the plugin module :mod:`xite.builtins`; third-party plugins are
loaded from the ``xite`` entry-point group. Both go through the same ``register_*`` hooks.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from xite import hookspecs
from xite.errors import ConfigError, UnknownComponentError

KINDS = ("encoders", "retrievers", "projectors", "interpolators", "adopters")


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    factory: Callable[..., Any]
    package: str  # the distribution (or module, for unpackaged plugins) that registered it


_pm: pluggy.PluginManager | None = None
_registry: dict[str, dict[str, Registration]] | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("xite")
        pm.add_hookspecs(hookspecs)
        from xite import builtins

        pm.register(builtins, name="xite.builtins")
        pm.load_setuptools_entrypoints("xite")
        _pm = pm
    return _pm


def _package_of(plugin: object, pm: pluggy.PluginManager) -> str:
    """Name the distribution a plugin module came from ('xite' for the built-ins)."""
    for p, dist in pm.list_plugin_distinfo():
        if p is plugin:
            return dist.project_name if hasattr(dist, "project_name") else dist.metadata["name"]
    module = getattr(plugin, "__name__", type(plugin).__name__)
    return module.split(".")[0]


def _collect(kind: str, pm: pluggy.PluginManager) -> dict[str, Registration]:
    found: dict[str, Registration] = {}
    hook = getattr(pm.hook, f"register_{kind}")
    for impl in hook.get_hookimpls():
        package = _package_of(impl.plugin, pm)

        def register(name: str, factory: Callable[..., Any], _package=package) -> None:
            found[name] = Registration(kind, name, factory, _package)

        impl.function(register)
    return found


def registry() -> dict[str, dict[str, Registration]]:
    global _registry
    if _registry is None:
        pm = get_plugin_manager()
        _registry = {kind: _collect(kind, pm) for kind in KINDS}
    return _registry


def reset() -> None:
    """Forget the loaded plugins (tests register plugins of their own)."""
    global _pm, _registry
    _pm = None
    _registry = None


def lookup(kind: str, name: str) -> tuple[Registration, dict[str, Any]]:
    """Find a component by name. Returns its registration and any options the name implies
    (``hf:PATH`` -> ``{"spec": "PATH"}``)."""
    regs = registry()[kind]
    if name in regs:
        return regs[name], {}
    if ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix + ":" in regs and rest:
            return regs[prefix + ":"], {"spec": rest}
    known = ", ".join(f"{n} ({r.package})" for n, r in sorted(regs.items())) or "none"
    singular = kind[:-1]
    raise UnknownComponentError(f"unknown {singular} '{name}'; registered {kind}: {known}")


def create(kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Instantiate a component with its options; a wrong option is a one-line error."""
    reg, implied = lookup(kind, name)
    opts = {**implied, **{k: v for k, v in (options or {}).items() if v is not None}}
    _check_options(reg, opts)
    try:
        return reg.factory(**opts)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{kind[:-1]} '{name}': {exc}") from exc


def _check_options(reg: Registration, opts: dict[str, Any]) -> None:
    try:
        sig = inspect.signature(reg.factory)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unknown = sorted(set(opts) - accepted)
    if unknown:
        raise ConfigError(
            f"{reg.kind[:-1]} '{reg.name}' does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(accepted)) or 'no options'}"
        )


def describe() -> list[tuple[str, str, str]]:
    """(kind, name, package) for every registered component, for ``xite plugins``."""
    rows = []
    for kind, regs in registry().items():
        for name, reg in sorted(regs.items()):
            rows.append((kind[:-1], name, reg.package))
    return rows
