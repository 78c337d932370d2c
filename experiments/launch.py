"""What every launcher shares: the console entry point and the lines printed at a run's start."""

import sys
from typing import Callable

from absl import app
import jax
import ml_collections

from experiments import configs
from visionary_jax import genotype as genotype_lib
from visionary_jax import metrics
from visionary_jax.nets import qnetwork


def run(main: Callable[[list[str]], None]) -> None:
  """app.run(main), with a --config file also looked up among the installed configs (`grasping:cpu`)."""
  sys.argv = configs.resolve_argv(sys.argv)
  app.run(main)


def print_run_start(config: ml_collections.ConfigDict,
                    arch: genotype_lib.Genotype | genotype_lib.SearchSpace) -> None:
  """The run's config, then the network's parameter count per top-level module (shapes only, no init)."""
  print(config, flush=True)
  network = qnetwork.build(config.network, arch)
  variables = jax.eval_shape(lambda: qnetwork.init_variables(network, jax.random.PRNGKey(0)))
  print(metrics.describe_parameters(variables["params"]), flush=True)
  if "arch" in variables:
    print(f"architecture parameters: {sum(metrics.parameter_counts(variables['arch']).values()):,}", flush=True)
