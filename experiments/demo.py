"""`make demo`: the project's main job on a small embedded default.

  python -m experiments.demo --workdir=/tmp/visionary_demo

1. collects a small grasping dataset at the `cpu` preset (a PNG of camera
   frames shows what the robot sees);
2. runs a short one-shot Visionary search on it (QT-Opt loss, weights and
   architecture logits trained together, Eq. 2);
3. derives the architecture (argmax op per location, attention edges with
   sigmoid weight > 0.5), prints it, draws it as PNG and prints the FLOPs of
   the search, found and base networks at the `paper` and `cpu` presets.
Rerunning resumes the collection and the search from their checkpoints.
"""

import os
import time

from absl import app
from absl import flags
from absl import logging

from experiments.configs import base
from experiments.configs import grasping
from visionary_jax import diagram
from visionary_jax import genotype as genotype_lib
from visionary_jax.episodes import collect
from visionary_jax.episodes import summary
from visionary_jax.nets import flops
from visionary_jax.nets import qnetwork
from visionary_jax.qtopt import trainer

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/visionary_demo", "Where the demo writes its dataset, runs and figures.")
_EPISODES = flags.DEFINE_integer("episodes", 200, "Grasping episodes to collect.")
_SEARCH_STEPS = flags.DEFINE_integer("search_steps", 150, "Gradient steps of the one-shot search.")
_BATCH = flags.DEFINE_integer("batch", 64, "Transitions per search step.")


def demo_config(episodes_dir: str, steps: int, batch: int):
  """The `cpu` grasping config, shortened to a demo-sized search."""
  config = grasping.get_config("cpu")
  config.train.dataset_dir = episodes_dir
  config.train.steps = steps
  config.train.eval_every = 0
  config.train.checkpoint_every = max(steps // 3, 1)
  config.train.log_every = max(steps // 10, 1)
  config.train.lag = max(steps // 5, 1)
  config.replay.batch_size = batch
  return config


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  start = time.time()
  workdir = _WORKDIR.value
  say = lambda line: print(line, flush=True)
  indent = lambda line: say("  " + line)

  config = grasping.get_config("cpu")
  say(f"[1/3] collecting {_EPISODES.value} grasping episodes at the cpu preset into {workdir}")
  collect.collect(config, workdir, num_episodes=_EPISODES.value, local_workers=2, progress_every=10.0,
                  print_fn=indent)
  stats = summary.write_summary(workdir, config.env.image_size)
  indent(f"dataset: {stats['episodes']} episodes, {stats['transitions']} transitions, success fraction "
         f"{stats['success_fraction']:.2f}; camera frames: {os.path.join(workdir, summary.SUMMARY_PNG)}")

  say(f"[2/3] one-shot search: {_SEARCH_STEPS.value} steps at batch {_BATCH.value} (weights and architecture "
      "logits trained together)")
  config = demo_config(os.path.join(workdir, collect.EPISODES_DIR), _SEARCH_STEPS.value, _BATCH.value)
  export_dir = trainer.run(config, os.path.join(workdir, "search"), "search", log=indent)

  say("[3/3] derived architecture")
  genotype_path = os.path.join(export_dir, "genotype.json")
  found = genotype_lib.load_json(genotype_path)
  weights = genotype_lib.load_json_weights(genotype_path)
  for line in found.describe().splitlines():
    indent(line)
  for i in range(genotype_lib.NUM_LOCATIONS):
    ops = ", ".join(f"{op} {w:.2f}" for op, w in weights[i]["op_weights"].items())
    indent(f"loc{i} softmax op weights: {ops}")
  picture = os.path.join(workdir, "found_architecture.png")
  diagram.draw(found, picture, f"found by a {_SEARCH_STEPS.value}-step demo search (grasping, cpu preset)", weights)
  indent(f"genotype: {genotype_path}; picture: {picture}")
  indent("forward FLOPs per sample (XLA cost analysis):")
  specs = {p: qnetwork.NetworkSpec.from_config(base.network(p)) for p in ("paper", "cpu")}
  for line in flops.flops_table(specs, found).splitlines():
    indent(line)
  say(f"demo finished in {time.time() - start:.0f} s; everything is in {workdir}")


if __name__ == "__main__":
  app.run(main)
