"""One configuration system: YAML files, deep-merged over the packaged defaults.

A config is named either by a packaged preset (``default``, ``demo``: files in
``configs/``) or by any fsspec URL of a YAML file. Overrides are dotted
``key=value`` strings (``detector.score_threshold=0.3``) whose values parse as YAML.
Every key must exist in ``configs/default.yaml``: a typo fails early with the
list of keys that do exist, instead of being silently ignored, and every value
is checked against :mod:`tubelets.settings` (types, ranges, choices).

``configs/default.yaml`` is the one home of every default: no model class or
function keeps defaults of its own, and Python code that builds one outside a
run takes its settings from :func:`defaults`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.resources
import inspect
import json
import re
from typing import Any, Callable, Iterable, Mapping, Optional, TypeVar

import fsspec
import yaml

from tubelets.errors import ConfigError
from tubelets.settings import not_read, validate_config

DEFAULT_PRESET = "default"
Built = TypeVar("Built")


class _Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where ``1e-4`` and ``1.0e4`` are strings; as in YAML 1.2, they are floats here.

    Typed validation would otherwise refuse ``--set train_detector.lr=1e-4``.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """``text`` as YAML, with exponent floats as YAML 1.2 reads them."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader: builds no arbitrary objects


def packaged_presets() -> list[str]:
    """Names of the YAML presets shipped in ``tubelets.configs``."""
    folder = importlib.resources.files("tubelets.configs")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_yaml(name_or_url: str) -> dict:
    """A packaged preset by name, or a YAML file at any fsspec URL, as a dict."""
    if name_or_url in packaged_presets():
        text = importlib.resources.files("tubelets.configs").joinpath(f"{name_or_url}.yaml").read_text()
        source = f"preset {name_or_url!r}"
    else:
        source = name_or_url
        try:
            with fsspec.open(name_or_url, "r") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise ConfigError(
                f"config {name_or_url!r} not found: give a YAML file or one of the presets {packaged_presets()}"
            ) from None
    try:
        loaded = parse_yaml(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config {source} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config {source} must be a mapping at the top level, got {type(loaded).__name__}")
    return loaded


def merge(base: Mapping, override: Mapping, path: str = "") -> dict:
    """``override`` deep-merged over ``base``; keys unknown to ``base`` are an error."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        dotted = f"{path}{key}"
        if key not in base:
            known = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(not_read(dotted) or f"unknown config key {dotted!r}; known keys here: {known}")
        if isinstance(base[key], Mapping) and isinstance(value, Mapping):
            merged[key] = merge(base[key], value, f"{dotted}.")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_overrides(pairs: Iterable[str]) -> dict:
    """``["a.b=1", "c=x"]`` as the nested mapping ``{"a": {"b": 1}, "c": "x"}``."""
    nested: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {pair!r} must look like key.sub=value")
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parse_yaml(raw)
    return nested


def load_config(name_or_url: str | None = None, overrides: Iterable[str] = ()) -> dict:
    """Defaults, then the named preset or file, then the dotted overrides; every value checked (``ConfigError``)."""
    config = read_yaml(DEFAULT_PRESET)
    if name_or_url and name_or_url != DEFAULT_PRESET:
        config = merge(config, read_yaml(name_or_url))
    config = merge(config, parse_overrides(overrides))
    validate_config(config)
    return config


def defaults(section: str, preset: Optional[str] = None) -> dict:
    """The shipped settings of one dotted config section, e.g. ``defaults("tracker.ipdt")``: a deep copy.

    ``preset`` (a packaged preset such as ``"shapes-vis"``, or a YAML file's
    URL) is merged over the defaults first, as ``--config`` is. Models keep
    no defaults of their own, so this is how Python code and tests build the
    model a run would: ``IpdtTracker(**defaults("tracker.ipdt"))``.
    """
    node: Any = _packaged_config(preset) if preset in (None, *packaged_presets()) else load_config(preset)
    walked = []
    for part in section.split("."):
        if not isinstance(node, Mapping) or part not in node:
            where = ".".join(walked) or "the top level"
            known = ", ".join(sorted(node)) if isinstance(node, Mapping) else "(none: a setting)"
            raise ConfigError(f"config section {section!r} does not exist; known keys at {where}: {known}")
        node = node[part]
        walked.append(part)
    if not isinstance(node, Mapping):
        raise ConfigError(f"config {section} is a setting, not a section")
    return copy.deepcopy(dict(node))


@functools.lru_cache(maxsize=None)
def _packaged_config(preset: Optional[str]) -> dict:
    """A packaged preset merged over the defaults, read once a process (tests build many models); do not change it."""
    return load_config(preset)


def config_hash(config: Mapping[str, Any]) -> str:
    """A short stable digest of a config, for provenance in output metadata."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def build_from_section(factory: Callable[..., Built], settings: Mapping[str, Any], what: str) -> Built:
    """``factory(**settings)`` for a config sub-section; a key ``factory`` does not take is a ConfigError.

    So is a key it needs (no default) that ``settings`` lacks: the defaults
    live in the YAML, so a section must come whole. The message names
    ``what`` the section configures and the keys it takes, so a typo fails
    before any work.
    """
    parameters = inspect.signature(factory).parameters
    known = sorted(parameters)
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} for {what}; known: {known}")
    missing = sorted(name for name, parameter in parameters.items()
                     if parameter.default is inspect.Parameter.empty and name not in settings
                     and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD))
    if missing:
        raise ConfigError(f"missing setting(s) {missing} for {what}: give its whole config section "
                          "(tubelets.config.defaults gives the shipped one)")
    return factory(**settings)
