"""`make demo`: the project's main job on a small embedded default.

  python -m experiments.demo --workdir=/tmp/visionary_demo

Collects a small grasping dataset at the `cpu` preset with 2 worker processes
(a PNG of camera frames shows what the robot sees), builds the QT-Opt
baseline and the Visionary search network on it, and prints the FLOPs table
at the `paper` and `cpu` presets. Rerunning resumes the collection.
"""

import os
import time

import jax
from absl import app
from absl import flags

from experiments.configs import grasping
from visionary_jax import genotype as genotype_lib
from visionary_jax.episodes import collect
from visionary_jax.episodes import summary
from visionary_jax.nets import flops
from visionary_jax.nets import qnetwork
from experiments.configs import base

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/visionary_demo", "Where the demo writes its dataset and figures.")
_EPISODES = flags.DEFINE_integer("episodes", 100, "Grasping episodes to collect.")


def _parameter_count(net: qnetwork.QNetwork) -> int:
  shapes = jax.eval_shape(lambda: qnetwork.init_variables(net, jax.random.PRNGKey(0)))
  return sum(x.size for x in jax.tree_util.tree_leaves(shapes["params"]))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  start = time.time()
  config = grasping.get_config("cpu")
  workdir = _WORKDIR.value
  print(f"[1/3] collecting {_EPISODES.value} grasping episodes at the cpu preset into {workdir}", flush=True)
  collect.collect(config, workdir, num_episodes=_EPISODES.value, local_workers=2, progress_every=10.0,
                  print_fn=lambda line: print("  " + line, flush=True))
  stats = summary.write_summary(workdir, config.env.image_size)
  print(f"  dataset: {stats['episodes']} episodes, {stats['transitions']} transitions, "
        f"success fraction {stats['success_fraction']:.2f}; camera frames: "
        f"{os.path.join(workdir, summary.SUMMARY_PNG)}", flush=True)

  print("[2/3] networks at the cpu preset", flush=True)
  spec = qnetwork.NetworkSpec.from_config(config.network)
  for name, arch in (("baseline (QT-Opt)", genotype_lib.BASELINE), ("search (Visionary)", genotype_lib.SearchSpace())):
    net = qnetwork.QNetwork(spec, arch)
    print(f"  {name}: {_parameter_count(net):,} weights; encode stops before L{net.arch.first_action_location}",
          flush=True)
  print("  baseline genotype:\n" + "\n".join("    " + line for line in genotype_lib.BASELINE.describe().splitlines()))

  print("[3/3] forward FLOPs per sample (XLA cost analysis); 'found' is the baseline until a search has run",
        flush=True)
  specs = {p: qnetwork.NetworkSpec.from_config(base.network(p)) for p in ("paper", "cpu")}
  print(flops.flops_table(specs, genotype_lib.BASELINE))
  print(f"demo finished in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
  app.run(main)
