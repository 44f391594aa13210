"""The experiment's configuration: the default grid (``default.toml``) with a user's TOML (or dict)
merged over it, and the XITE variants it lists."""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from xite.errors import ConfigError
from xite.recipe import ComponentSpec

DEFAULT_CONFIG = "default.toml"
BASELINES = ("zero-shot", "self-training", "upper-bound")


@dataclass
class Variant:
    """One XITE arm of the grid: which projector, interpolator and adopter it uses."""

    name: str
    projector: ComponentSpec
    interpolator: ComponentSpec
    adopter: ComponentSpec
    weight: float = 1.0  # training weight of each synthetic row (English rows weigh 1)

    def to_dict(self) -> dict:
        d = {"name": self.name, "projector": self.projector.to_dict(), "interpolator": self.interpolator.to_dict(),
             "adopter": self.adopter.to_dict()}
        if self.weight != 1.0:  # only when set, so cells of unweighted variants keep their keys
            d["weight"] = self.weight
        return d


def default_config() -> dict:
    text = resources.files("xite.experiments").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")
    return tomllib.loads(text)


def load_config(config: str | Path | Mapping | None = None) -> dict:
    """The default config, with a TOML file's (or a dict's) keys merged over it."""
    return load_config_over(default_config(), config)


def load_config_over(cfg: dict, config: str | Path | Mapping | None) -> dict:
    """``cfg`` with a TOML file's (or a dict's) keys merged over it."""
    if config is None:
        return cfg
    if isinstance(config, Mapping):
        user = copy.deepcopy(dict(config))
    else:
        path = Path(config)
        try:
            user = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return merge(cfg, user)


def merge(base: dict, over: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)  # lists (variants, seeds) replace, they do not append
    return out


def _spec(value: Any, default: Mapping, shared: Mapping) -> ComponentSpec:
    if value is None:
        return ComponentSpec(default["name"], dict(default.get("options", {})))
    if isinstance(value, str):
        return ComponentSpec(value, dict(shared.get(value, {})))
    if isinstance(value, Mapping) and "name" in value:
        return ComponentSpec(value["name"], {**shared.get(value["name"], {}), **dict(value.get("options", {}))})
    raise ConfigError(f"a component must be a name or a table with 'name' (and 'options'), got {value!r}")


def variants_of(cfg: Mapping) -> list[Variant]:
    defaults, shared = cfg.get("defaults", {}), cfg.get("component_options", {})
    out, seen = [], set()
    for raw in cfg.get("variants", []):
        name = raw.get("name")
        if not name or name in seen or name in BASELINES:
            raise ConfigError(f"every variant needs a unique name (not a baseline's), got {name!r}")
        seen.add(name)
        weight = float(raw.get("weight", 1.0))
        if not weight > 0:
            raise ConfigError(f"variant {name!r}: weight must be > 0, got {weight}")
        specs = (_spec(raw.get(kind), defaults[kind], shared) for kind in ("projector", "interpolator", "adopter"))
        out.append(Variant(name, *specs, weight))
    if not out:
        raise ConfigError("the config lists no [[variants]]")
    return out
