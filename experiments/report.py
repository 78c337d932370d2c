"""Tables and figures of a study root: Table I (Markdown, CSV), learning curves, FLOPs, found genotypes.

  python -m experiments.report --workdir=ROOT --output=DIR [--flops_presets=paper,cpu]

ROOT is an experiments/study.py root. Writes DIR/table_one.md and .csv (final and
peak success per variant, mean ± std, best run, Student's t-test against the
baseline), DIR/learning_curves.png (mean ± std band per variant), DIR/flops.md
(search, found and base networks at each preset), DIR/genotypes.md and
DIR/report.md (all of it, with the study's settings). Runs still in progress are
listed, not counted.
"""

from absl import app
from absl import flags

from experiments import launcher
from experiments.configs import base
from visionary_jax.nets import qnetwork
from visionary_jax.study import report

_WORKDIR = flags.DEFINE_string("workdir", None, "Study root (experiments/study.py --workdir).")
_OUTPUT = flags.DEFINE_string("output", None, "Directory for the tables and figures.")
_FLOPS_PRESETS = flags.DEFINE_list("flops_presets", ["paper", "cpu"], "Presets of the FLOPs table (may be empty).")
flags.mark_flags_as_required(["workdir", "output"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  unknown = [p for p in _FLOPS_PRESETS.value if p not in base.PRESETS]
  if unknown:
    raise app.UsageError(f"--flops_presets: unknown presets {unknown}; presets are {base.PRESETS}")
  launcher.check_writable("output", _OUTPUT.value)
  specs = {p: qnetwork.NetworkSpec.from_config(base.network(p)) for p in _FLOPS_PRESETS.value}
  report.write_report(_WORKDIR.value, _OUTPUT.value, specs, log=lambda line: print(line, flush=True))


def run():
  launcher.run(main)


if __name__ == "__main__":
  run()
