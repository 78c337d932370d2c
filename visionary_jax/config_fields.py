"""Typed, validated views of config sections: a frozen dataclass built from a ConfigDict."""

import dataclasses
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def dataclass_from_config(cls: type[T], config: Mapping[str, Any], section: str) -> T:
  """cls(**config) for exactly the dataclass's fields; a missing or unknown field is a ValueError naming it.

  Args:
    cls: a dataclass whose fields are the section's fields.
    config: the config section (an ml_collections.ConfigDict or a dict).
    section: the section's name in error messages, e.g. "network".
  """
  names = [f.name for f in dataclasses.fields(cls)]
  missing = [n for n in names if n not in config]
  if missing:
    raise ValueError(f"{section} config is missing fields {missing}")
  unknown = sorted(set(config.keys()) - set(names))
  if unknown:
    raise ValueError(f"{section} config has unknown fields {unknown}")
  return cls(**{n: config[n] for n in names})
