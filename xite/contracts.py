"""What a registered component class must provide, per kind; checked when a plugin registers it.

A class passes when it has every method and attribute its kind lists below, and none of the
methods marked :func:`abstract` in a base class it inherits is left unimplemented. Attributes
count when the class (or a base) defines them or annotates them in its body (``dim: int``), so a
class that sets ``self.dim`` in its constructor declares it with an annotation; subclassing the
base class (``xite.encoders.base.Encoder``, ...) provides them all.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

KINDS = ("encoders", "retrievers", "projectors", "interpolators", "adopters")


def abstract(method: Callable) -> Callable:
    """Mark a base-class method that every concrete component must override.

    Unlike ``abc.abstractmethod`` this does not stop the base class from being instantiated
    (xite's own tests build bare bases); the registration check reports a subclass that forgot it.
    """
    method.__xite_abstract__ = True
    return method


@dataclass(frozen=True)
class Contract:
    methods: tuple[str, ...]
    attributes: tuple[str, ...]
    base: str  # where the contract is documented, for error messages


CONTRACTS: dict[str, Contract] = {
    "encoders": Contract(("encode",), ("name", "version", "dim"), "xite.encoders.base.Encoder"),
    "retrievers": Contract(("build", "search"), ("name",), "xite.retrievers.base.Retriever"),
    "projectors": Contract(("fit",), ("name",), "xite.projectors.base.Projector"),
    "interpolators": Contract(("coefficients",), ("name", "interp"), "xite.interpolators.base.Interpolator"),
    "adopters": Contract(("adopt",), ("name", "k"), "xite.adopters.base.Adopter"),
}


def component_class(factory: Any) -> type | None:
    """The class a factory makes: the factory itself, or a function's return annotation."""
    if inspect.isclass(factory):
        return factory
    if callable(factory):
        try:
            hint = inspect.signature(factory, eval_str=True).return_annotation
        except Exception:  # an annotation that does not resolve: treat as unannotated
            return None
        if inspect.isclass(hint):
            return hint
    return None


def _declared(cls: type, attribute: str) -> bool:
    if hasattr(cls, attribute):
        return True
    return any(attribute in getattr(klass, "__annotations__", {}) for klass in cls.__mro__)


def contract_violation(kind: str, factory: Any) -> str | None:
    """Why ``factory`` cannot be registered as a component of ``kind``, or None when it can."""
    contract = CONTRACTS[kind]
    cls = component_class(factory)
    if cls is None:
        return (
            f"{factory!r} is neither a class nor a function annotated to return one "
            f"(register the component class; see {contract.base})"
        )
    problems = []
    for method in contract.methods:
        value = inspect.getattr_static(cls, method, None)
        if value is None or not callable(getattr(cls, method, None)):
            problems.append(f"{method}()")
    for method_name, value in inspect.getmembers(cls, callable):
        if getattr(value, "__xite_abstract__", False) and f"{method_name}()" not in problems:
            problems.append(f"{method_name}()")
    missing_attrs = [a for a in contract.attributes if not _declared(cls, a)]
    parts = []
    if problems:
        parts.append("does not implement " + ", ".join(problems))
    if missing_attrs:
        parts.append("has no attribute " + ", ".join(missing_attrs))
    if not parts:
        return None
    return f"{cls.__module__}.{cls.__qualname__} " + " and ".join(parts) + f" (see {contract.base})"
