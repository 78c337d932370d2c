"""Derives the architecture from a search run's checkpoint (argmax op per location, edges with weight > 0.5).

  python -m experiments.derive --search=SEARCH_WORKDIR --output=DIR [--step=K]

Reads the newest checkpoint (or step K) of SEARCH_WORKDIR (experiments/search.py)
and writes to DIR: genotype.json (the genotype with the softmax op and sigmoid
edge weights per location; train it with experiments/train.py --arch=DIR/genotype.json),
architecture.png (Fig. 5-style picture), flops.md (forward FLOPs of the search,
found and base networks at the run's network config) and derive.json.
"""

from absl import app
from absl import flags
from absl import logging

from experiments import launcher
from visionary_jax.search import one_shot

_SEARCH = flags.DEFINE_string("search", None, "Workdir of a search run.")
_OUTPUT = flags.DEFINE_string("output", None, "Directory for genotype.json, architecture.png, flops.md.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to derive from (default: the newest).",
                             lower_bound=1)
flags.mark_flags_as_required(["search", "output"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  launcher.check_writable("output", _OUTPUT.value)
  one_shot.derive(_SEARCH.value, _OUTPUT.value, _STEP.value, log=lambda line: print(line, flush=True))


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()
