"""Task configs: grasping.py and stacking.py, each with the presets paper / cpu / smoke (base.py)."""

import os
from typing import Sequence

DIRECTORY = os.path.dirname(os.path.abspath(__file__))


def resolve(value: str) -> str:
  """A --config value (FILE[:PRESET]) whose FILE exists: as given, or else the file of that name here.

  So `grasping:cpu`, `grasping.py:cpu` and `experiments/configs/grasping.py:cpu`
  all work outside a checkout, from the installed package.
  """
  path, colon, preset = value.partition(":")
  if os.path.exists(path):
    return value
  name = os.path.basename(path)
  installed = os.path.join(DIRECTORY, name if name.endswith(".py") else name + ".py")
  return installed + colon + preset if os.path.isfile(installed) else value


def resolve_argv(argv: Sequence[str], flag: str = "config") -> list[str]:
  """argv with the value of --FLAG=VALUE or --FLAG VALUE passed through `resolve`."""
  out = list(argv)
  for i, arg in enumerate(out):
    if arg.startswith(f"--{flag}="):
      out[i] = f"--{flag}=" + resolve(arg[len(flag) + 3:])
    elif arg == f"--{flag}" and i + 1 < len(out):
      out[i + 1] = resolve(out[i + 1])
  return out
