"""Benchmarks: `python -m experiments.benchmark --suite=NAME`.

Each suite lives in `experiments/benchmarks/NAME.py` and exposes
`run() -> dict`; its figures are printed as one JSON object on the last line.
"""

import importlib
import json
import pkgutil

from absl import app
from absl import flags

from experiments import benchmarks
from experiments import launcher

_SUITE = flags.DEFINE_string("suite", "networks", "Which benchmark suite to run.")


def available_suites() -> list[str]:
  return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_"))


def main(argv):
  del argv
  suites = available_suites()
  if _SUITE.value not in suites:
    raise app.UsageError(f"--suite={_SUITE.value!r} is not a benchmark suite; choose one of {suites}")
  module = importlib.import_module(f"experiments.benchmarks.{_SUITE.value}")
  result = module.run()
  print(json.dumps(result, sort_keys=True), flush=True)


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()
