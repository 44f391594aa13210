"""A recipe: every choice that decides what ``augment`` produces, as one value.

The components (by name, with their options), the seed, synthetic rows per target row and the
source language. A recipe is read from a TOML file, from a run's ``manifest.json`` (a run records
the recipe that made it, so ``xite augment --config runs/x/manifest.json`` reproduces run x), or
built in Python; command-line choices are laid over it.

    # recipe.toml
    seed = 0
    per_target = 1
    [encoder]
    name = "e5-small"
    [adopter]
    name = "vote"
    options = { k = 5, min_margin = 0.6 }
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from xite.errors import ConfigError

# The order the pipeline runs them in; the keys of a recipe's component tables.
KINDS = ("encoder", "retriever", "adopter", "projector", "interpolator")
DEFAULTS = {"encoder": "e5-small", "retriever": "faiss", "adopter": "top1", "projector": "lda", "interpolator": "linear"}
SCALARS = {"seed": int, "per_target": int, "source_language": str}


@dataclass(frozen=True)
class ComponentSpec:
    """A component chosen by name, with its options (a None value means 'the default')."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "options": dict(self.options)}

    @classmethod
    def parse(cls, value: Any, where: str) -> "ComponentSpec":
        """A name, or a table ``{name = ..., options = {...}}``."""
        if isinstance(value, ComponentSpec):
            return value
        if isinstance(value, str) and value:
            return cls(value, {})
        if isinstance(value, Mapping) and isinstance(value.get("name"), str) and value["name"]:
            extra = sorted(set(value) - {"name", "options"})
            if extra:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)} (a component has 'name' and 'options')")
            options = value.get("options", {})
            if not isinstance(options, Mapping):
                raise ConfigError(f"{where}.options: must be a table, got {type(options).__name__}")
            return cls(value["name"], dict(options))
        raise ConfigError(f"{where}: a component is a name or a table with 'name' (and 'options'), got {value!r}")

    def with_options(self, options: Mapping[str, Any]) -> "ComponentSpec":
        return replace(self, options={**self.options, **{k: v for k, v in options.items() if v is not None}})


@dataclass(frozen=True)
class Recipe:
    encoder: ComponentSpec = ComponentSpec(DEFAULTS["encoder"])
    retriever: ComponentSpec = ComponentSpec(DEFAULTS["retriever"])
    adopter: ComponentSpec = ComponentSpec(DEFAULTS["adopter"])
    projector: ComponentSpec = ComponentSpec(DEFAULTS["projector"])
    interpolator: ComponentSpec = ComponentSpec(DEFAULTS["interpolator"])
    seed: int = 0
    per_target: int = 1
    source_language: str = "en"

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if isinstance(self.per_target, bool) or not isinstance(self.per_target, int) or self.per_target < 1:
            raise ConfigError(f"per_target must be an integer >= 1, got {self.per_target!r}")
        from xite.checks import check_language

        check_language(self.source_language, "source_language")

    def spec(self, kind: str) -> ComponentSpec:
        return getattr(self, kind)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {k: getattr(self, k) for k in SCALARS}
        out.update({kind: self.spec(kind).to_dict() for kind in KINDS})
        return out

    def to_toml(self) -> str:
        lines = [f"{k} = {json.dumps(getattr(self, k))}" for k in SCALARS]
        for kind in KINDS:
            spec = self.spec(kind)
            lines += ["", f"[{kind}]", f"name = {json.dumps(spec.name)}"]
            if spec.options:
                lines.append("[" + kind + ".options]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in spec.options.items() if v is not None]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "recipe") -> "Recipe":
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: a recipe is a table, got {type(data).__name__}")
        unknown = sorted(set(data) - set(KINDS) - set(SCALARS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; a recipe has {', '.join(KINDS + tuple(SCALARS))}")
        kwargs: dict[str, Any] = {kind: ComponentSpec.parse(data[kind], f"{where}: {kind}") for kind in KINDS if kind in data}
        for key, typ in SCALARS.items():
            if key in data:
                value = data[key]
                if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ConfigError(f"{where}: {key} must be an integer, got {value!r}")
                if typ is str and not isinstance(value, str):
                    raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
                kwargs[key] = value
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> "Recipe":
        """A TOML recipe, or a run's manifest.json (its ``recipe`` entry)."""
        path = Path(path)
        if path.is_dir():
            path = path / "manifest.json"
        elif not path.exists() and path.name == str(path) and path.suffix == "" and packaged_recipe(path.name):
            path = packaged_recipe(path.name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: recipe file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the recipe: {exc}") from None
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: not valid JSON: {exc}") from None
            if isinstance(data, Mapping) and "recipe" in data:
                data = data["recipe"]
            return cls.from_dict(data, str(path))
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, str(path))

    def override(self, *, components: Mapping[str, str | None] | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None, **scalars: Any) -> "Recipe":
        """This recipe with command-line choices laid over it: a new component name replaces the
        component (and its options); options are merged into the (new) component's."""
        changes: dict[str, Any] = {k: v for k, v in scalars.items() if v is not None}
        for kind in KINDS:
            spec = self.spec(kind)
            name = (components or {}).get(kind)
            if name is not None and name != spec.name:
                spec = ComponentSpec(name, {})
            extra = (options or {}).get(kind)
            if extra:
                spec = spec.with_options(extra)
            changes[kind] = spec
        return replace(self, **changes)


def packaged_recipe(name: str) -> Path | None:
    """The recipes xite ships (``xite/recipes/NAME.toml``), usable by name: ``--config paper``."""
    from importlib import resources

    candidate = Path(str(resources.files("xite").joinpath("recipes", f"{name}.toml")))
    return candidate if candidate.is_file() else None


def packaged_recipes() -> list[str]:
    from importlib import resources

    return sorted(p.name[:-5] for p in resources.files("xite").joinpath("recipes").iterdir() if p.name.endswith(".toml"))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"cannot write option value {value!r} to TOML")
