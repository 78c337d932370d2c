"""Typed, validated views of config sections: a frozen dataclass built from a ConfigDict."""

import dataclasses
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def dataclass_from_config(cls: type[T], config: Mapping[str, Any], section: str) -> T:
  """cls(**config) for the dataclass's fields; an unknown field, or a missing one without a default, is a ValueError.

  A field with a default may be absent (configs written before it existed keep loading).

  Args:
    cls: a dataclass whose fields are the section's fields.
    config: the config section (an ml_collections.ConfigDict or a dict).
    section: the section's name in error messages, e.g. "network".
  """
  names = [f.name for f in dataclasses.fields(cls)]
  required = [f.name for f in dataclasses.fields(cls)
              if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
  missing = [n for n in required if n not in config]
  if missing:
    raise ValueError(f"{section} config is missing fields {missing}")
  unknown = sorted(set(config.keys()) - set(names))
  if unknown:
    raise ValueError(f"{section} config has unknown fields {unknown}")
  return cls(**{n: config[n] for n in names if n in config})
