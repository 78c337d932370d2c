"""What every launcher runs: one line per bad input, exit status 2 for usage and 1 for data; run-start lines.

  if __name__ == "__main__":
    launcher.run(main)

A bad flag, config override, config preset or command-line file (--arch genotype)
prints `NAME: message` on stderr and exits with USAGE (2); a bad dataset,
checkpoint or export, or a failed write, exits with DATA (1). NAME is the
program's name (`train` for `python -m experiments.train`). Other exceptions are
bugs and keep their traceback.

The status of a ValueError is that of its root cause (the end of its `raise ...
from` chain): a ShardError, or a ValueError raised by a module in DATA_MODULES, is
a data error; any other ValueError is a usage error. So a launcher adds context
with `raise ValueError(f"--export: {e}") from e` and keeps the status.
"""

import os
import sys
import tempfile

from absl import app
from absl import flags
import ml_collections
from ml_collections.config_flags import config_flags as config_flags_lib

from experiments import configs
from visionary_jax.episodes import shards

USAGE = 2
DATA = 1
# Modules whose ValueErrors are about the content of a file they read (a checkpoint, an export).
DATA_MODULES = ("visionary_jax.checkpoints", "visionary_jax.export", "visionary_jax.episodes.shards")
# Errors that are never about how the command was typed (OSError: a failed read or write).
DATA_ERRORS = (shards.ShardError, FloatingPointError, OSError)
# absl's flags that print help and exit with status 1.
HELP_FLAGS = ("--help", "-help", "--helpfull", "-helpfull", "--helpshort", "-helpshort", "--helpxml", "-helpxml",
              "-?")


def name() -> str:
  """The program's name: `train` for `python -m experiments.train` and for a `visionary-train` script."""
  return os.path.splitext(os.path.basename(sys.argv[0]))[0] or "launcher"


def fail(message: str, status: int = USAGE):
  """Prints `NAME: message` to stderr and exits with `status`."""
  print(f"{name()}: {message}", file=sys.stderr, flush=True)
  sys.exit(status)


def _root_cause(error: BaseException) -> BaseException:
  while error.__cause__ is not None:
    error = error.__cause__
  return error


def exit_status(error: BaseException) -> int:
  """DATA or USAGE for an error that ends a launcher (see the module docstring)."""
  root = _root_cause(error)
  if isinstance(root, DATA_ERRORS):
    return DATA
  traceback = root.__traceback__
  while traceback is not None and traceback.tb_next is not None:
    traceback = traceback.tb_next
  module = traceback.tb_frame.f_globals.get("__name__") if traceback is not None else None
  return DATA if module in DATA_MODULES else USAGE


def _config_value(flag_name: str, argv: list[str]) -> str | None:
  for i, arg in enumerate(argv):
    for prefix in (f"--{flag_name}=", f"-{flag_name}="):
      if arg.startswith(prefix):
        return arg[len(prefix):]
    if arg in (f"--{flag_name}", f"-{flag_name}") and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _innermost(error: BaseException) -> BaseException:
  while (error.__cause__ or error.__context__) is not None:
    error = error.__cause__ or error.__context__
  return error


def unknown_config_field(config: ml_collections.ConfigDict, path: str) -> str | None:
  """A message naming the first unknown part of the dotted `path` and its section's fields; None if all exist."""
  node, walked = config, []
  for part in path.split("."):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      section = f"the {'.'.join(walked)!r} section" if walked else "the config"
      known = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      what = f"{section}'s fields are {known}" if known else f"{'.'.join(walked)!r} is not a section"
      return f"unknown config field {'.'.join(walked + [part])!r}; {what}"
    node = node[part]
    walked.append(part)
  return None


def _config_file_flags() -> list[flags.Flag]:
  return [flags.FLAGS[n] for n in list(flags.FLAGS)
          if isinstance(flags.FLAGS[n].parser, config_flags_lib.ConfigFileFlagParser)]


def config_problem(argv: list[str]) -> str | None:
  """Why the config flags of `argv` do not parse: an unloadable config file or preset, or an unknown field."""
  for flag in _config_file_flags():
    value = _config_value(flag.name, argv)
    if value is None:
      continue
    try:
      config = flag.parser.parse(value)
    except Exception as e:  # pylint: disable=broad-except
      return f"--{flag.name}={value}: {_first_line(_innermost(e))}"
    if not isinstance(config, ml_collections.ConfigDict):
      path = value.split(":", 1)[0]
      why = "no such file" if not os.path.isfile(path) else "its get_config() does not return a ConfigDict"
      return f"--{flag.name}={value}: cannot load the config file {path} ({why})"
    prefix = f"--{flag.name}."
    for arg in argv:
      if arg.startswith(prefix) or arg.startswith(f"--no{flag.name}."):
        path = arg.split("=", 1)[0].split(".", 1)[1]
        problem = unknown_config_field(config, path)
        if problem:
          return f"{arg.split('=', 1)[0]}: {problem}"
  return None


def _first_line(error: BaseException) -> str:
  return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def parse_flags(argv: list[str]) -> list[str]:
  """flags.FLAGS(argv), with any parse error (flag, config file, preset, override) as one line and USAGE.

  A help flag (--help, --helpfull, ...) prints absl's help and exits 0: the user asked for it.
  """
  try:
    remaining = flags.FLAGS(argv)
  except SystemExit as e:
    if e.code == 1 and any(arg.split("=")[0] in HELP_FLAGS for arg in argv[1:]):
      sys.exit(0)
    raise
  except Exception as e:  # pylint: disable=broad-except
    fail(config_problem(argv) or _first_line(e))
  # A config file that cannot be read parses as a placeholder that raises on first use.
  if any(f.value is not None and not isinstance(f.value, ml_collections.ConfigDict) for f in _config_file_flags()):
    fail(config_problem(argv) or "a config flag could not be loaded")
  return remaining


def check_writable(flag_name: str, directory: str) -> str:
  """Fails unless `directory`, or the nearest existing folder it would be made in, takes a new file.

  Writes and removes a temp file there (creates nothing), so that a run cannot fail on it after hours.
  """
  existing = os.path.abspath(directory)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  try:
    if not os.path.isdir(existing):
      raise NotADirectoryError(f"{existing} is a file")
    with tempfile.TemporaryFile(dir=existing):
      pass
  except OSError as e:
    fail(f"--{flag_name} {directory} is not writable ({e.strerror or e})")
  return directory


def check_output_file(flag_name: str, path: str | None) -> None:
  """check_writable on the directory of an optional output file."""
  if path:
    check_writable(flag_name, os.path.dirname(os.path.abspath(path)))


def _call(main, argv):
  try:
    return main(argv)
  except app.UsageError as e:
    fail(str(e), USAGE)
  except (ValueError, *DATA_ERRORS) as e:
    fail(str(e), exit_status(e))


def run(main) -> None:
  """app.run(main) with the flag parsing and error reporting described in the module docstring.

  A --config file is also looked up among the installed configs (`grasping:cpu`).
  """
  sys.argv = configs.resolve_argv(sys.argv)
  app.run(lambda argv: _call(main, argv), flags_parser=parse_flags)


def print_run_start(config: ml_collections.ConfigDict, arch) -> None:
  """The run's config, then the network's parameter count per top-level module (shapes only, no init).

  `arch`: a genotype_lib.Genotype or SearchSpace.
  """
  import jax  # pylint: disable=g-import-not-at-top  (launchers without a network stay light)

  from visionary_jax import metrics  # pylint: disable=g-import-not-at-top
  from visionary_jax.nets import qnetwork  # pylint: disable=g-import-not-at-top
  print(config, flush=True)
  network = qnetwork.build(config.network, arch)
  variables = jax.eval_shape(lambda: qnetwork.init_variables(network, jax.random.PRNGKey(0)))
  print(metrics.describe_parameters(variables["params"]), flush=True)
  if "arch" in variables:
    print(f"architecture parameters: {sum(metrics.parameter_counts(variables['arch']).values()):,}", flush=True)
