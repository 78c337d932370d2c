"""Subprocess helper: one update on 1, 2, ... N host devices, written to an npz for the parent test.

Usage: XLA_FLAGS=--xla_force_host_platform_device_count=N python tests/update_multidevice.py N OUT.npz
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # pylint: disable=g-import-not-at-top
import numpy as np

import update_fixtures
from visionary_jax import genotype as G
from visionary_jax.nets import qnetwork


def main(n: int, out: str):
  assert jax.local_device_count() == n, (jax.local_device_count(), n)
  cfg = update_fixtures.config("smoke")
  network = qnetwork.build(cfg.network, G.BASELINE)
  arrays = {}
  for devices in sorted({1, 2, n}):
    state, metrics = update_fixtures.one_update(network, cfg, devices, global_batch=8)
    for path, leaf in jax.tree_util.tree_leaves_with_path({"state": state, "metrics": metrics}):
      arrays[f"{devices}{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
  np.savez(out, **arrays)


if __name__ == "__main__":
  main(int(sys.argv[1]), sys.argv[2])
