"""`make demo`: the whole Visionary pipeline on grasping at a small embedded default.

  python -m experiments.demo --workdir=/tmp/visionary_demo

1. collects a small grasping dataset at the `cpu` preset (camera frames PNG);
2. runs a short one-shot Visionary search on it (QT-Opt loss, weights and
   architecture logits trained together, Eq. 2) and derives the architecture
   (argmax op per location, attention edges with sigmoid weight > 0.5);
3. trains the found network and the QT-Opt baseline from scratch with the same
   budget and evaluates both in PyBullet on test objects;
4. writes the study report (Table I, learning curves, FLOPs, genotypes) and
   prints the found genotype, both success rates with 95 % Wilson intervals and
   the paths of the figures.
The budgets are far below the paper's, so the success rates are noisy; they
are measured, not made up. Rerunning resumes every stage.
"""

import os
import time

from absl import app
from absl import flags
from absl import logging

from experiments import launcher
from experiments.configs import base
from experiments.configs import grasping
from visionary_jax import genotype as genotype_lib
from visionary_jax.episodes import collect
from visionary_jax.episodes import summary
from visionary_jax.nets import qnetwork
from visionary_jax.study import report
from visionary_jax.study import runner

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/visionary_demo", "Where the demo writes its dataset, runs and figures.")
_EPISODES = flags.DEFINE_integer("episodes", 400, "Grasping episodes to collect.", lower_bound=1)
_SEARCH_STEPS = flags.DEFINE_integer("search_steps", 200, "Gradient steps of the one-shot search.",
                                    lower_bound=1)
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 300,
                                   "Gradient steps of each network trained from scratch.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch", 64, "Transitions per gradient step.", lower_bound=1)
_TRIALS = flags.DEFINE_integer("trials", 50, "PyBullet evaluation trials per network (test objects).",
                              lower_bound=1)
_ARCH_LR = flags.DEFINE_float("arch_learning_rate", 0.01,
                              "Adam learning rate of the architecture logits (the cpu preset's 3e-3 is sized "
                              "for ~2000-step searches).")

VARIANTS = ("visionary", "baseline")


def demo_config(episodes_dir: str):
  """The `cpu` grasping config, shortened to demo-sized search and training runs."""
  for name, flag in (("search_steps", _SEARCH_STEPS), ("train_steps", _TRAIN_STEPS), ("batch", _BATCH),
                     ("trials", _TRIALS), ("episodes", _EPISODES)):
    if flag.value < 1:
      raise app.UsageError(f"--{name} must be a positive integer, got {flag.value}")
  config = grasping.get_config("cpu")
  config.train.dataset_dir = episodes_dir
  config.train.arch_learning_rate = _ARCH_LR.value
  config.train.lag = max(min(_SEARCH_STEPS.value, _TRAIN_STEPS.value) // 4, 1)
  config.train.log_every = 25
  config.replay.batch_size = _BATCH.value
  config.study.variants = VARIANTS
  config.study.seeds = 1
  config.study.search_steps = _SEARCH_STEPS.value
  config.study.retrain_steps = _TRAIN_STEPS.value
  config.study.eval_every = 0  # one evaluation, after the last step
  config.study.eval_trials = _TRIALS.value
  return config


def _interval(final) -> str:
  return (f"{final['success_rate']:.2f} ({final['successes']}/{final['trials']} trials, 95 % Wilson "
          f"[{final['wilson_low']:.2f}, {final['wilson_high']:.2f}])")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  start = time.time()
  workdir = launcher.check_writable("workdir", _WORKDIR.value)
  say = lambda line: print(line, flush=True)
  indent = lambda line: say("  " + line)
  elapsed = lambda: f"[{time.time() - start:.0f} s]"

  config = grasping.get_config("cpu")
  say(f"[1/4] collecting {_EPISODES.value} grasping episodes at the cpu preset into {workdir}")
  collect.collect(config, workdir, num_episodes=_EPISODES.value, local_workers=2, progress_every=10.0,
                  print_fn=indent)
  stats = summary.write_summary(workdir, config.task, config.env.image_size)
  indent(f"dataset: {stats['episodes']} episodes, {stats['transitions']} transitions, success fraction "
         f"{stats['success_fraction']:.2f}; camera frames: {os.path.join(workdir, summary.SUMMARY_PNG)}")

  config = demo_config(os.path.join(workdir, collect.EPISODES_DIR))
  root = os.path.join(workdir, "study")
  say(f"{elapsed()} [2/4] one-shot search ({_SEARCH_STEPS.value} steps), derive, then train found and baseline "
      f"from scratch ({_TRAIN_STEPS.value} steps each, batch {_BATCH.value}) and evaluate each on "
      f"{_TRIALS.value} test-object trials")
  results = {r["variant"]: r for r in runner.run_study(config, root, log=indent)}

  say(f"{elapsed()} [3/4] report")
  specs = {"cpu": qnetwork.NetworkSpec.from_config(base.network("cpu"))}
  paths = report.write_report(root, os.path.join(workdir, "report"), specs, log=indent)

  say(f"{elapsed()} [4/4] results")
  found = genotype_lib.Genotype.from_json_dict(results["visionary"]["genotype"])
  indent("found genotype:")
  for line in found.describe().splitlines():
    indent("  " + line)
  indent(f"success, found network:    {_interval(results['visionary']['final'])}")
  indent(f"success, QT-Opt baseline:  {_interval(results['baseline']['final'])}")
  seed_dir = runner.run_dir(root, "visionary", 0)
  indent("figures:")
  for what, path in (("camera frames", os.path.join(workdir, summary.SUMMARY_PNG)),
                     ("found architecture", os.path.join(seed_dir, "derived", "architecture.png")),
                     ("architecture weights during the search", os.path.join(seed_dir, "search",
                                                                             "architecture_weights.png")),
                     ("success rates", paths["learning_curves.png"]),
                     ("report", paths["report.md"])):
    indent(f"  {what}: {path}")
  say(f"demo finished in {time.time() - start:.0f} s; everything is in {workdir}")


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()
