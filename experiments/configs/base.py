"""Presets shared by the task configs: `paper`, `cpu` and `smoke`.

`paper` is the Grasping44 network of QT-Opt at 472x472 as in the paper; `cpu`
keeps the trunk's shape (conv, two conv blocks, pooling, a VALID/SAME tail, the
five merge locations) at 64x64 so a jitted search step at batch 256 runs well
under a second on a 2-core CPU; `smoke` is for tests and takes seconds.
"""

import ml_collections

PRESETS = ("paper", "cpu", "smoke")


def check_preset(preset: str) -> str:
  if preset not in PRESETS:
    raise ValueError(f"config preset must be one of {PRESETS}, got {preset!r}")
  return preset


def network(preset: str) -> ml_collections.ConfigDict:
  """The Q-network trunk (Grasping44 layout) and the search space around it."""
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.image_size = {"paper": 472, "cpu": 64, "smoke": 32}[preset]  # square RGB input, pixels
  c.channels = {"paper": 64, "cpu": 32, "smoke": 8}[preset]  # width of every conv layer
  c.conv1_kernel = {"paper": 6, "cpu": 6, "smoke": 3}[preset]  # first conv, stride below
  c.conv1_stride = 2
  c.pool1 = {"paper": 3, "cpu": 3, "smoke": 2}[preset]  # max-pool window = stride after conv1
  c.block2_depth = {"paper": 6, "cpu": 4, "smoke": 2}[preset]  # convs in the first block
  c.block2_kernel = {"paper": 5, "cpu": 5, "smoke": 3}[preset]
  c.pool2 = {"paper": 3, "cpu": 2, "smoke": 2}[preset]  # max-pool after block 2 (baseline merges here)
  c.block3_depth = {"paper": 6, "cpu": 4, "smoke": 2}[preset]  # convs after the baseline merge
  c.block3_kernel = 3
  c.pool3 = 2  # max-pool after block 3
  c.block4_depth = {"paper": 3, "cpu": 2, "smoke": 1}[preset]  # final convs before the head
  c.block4_kernel = 3
  c.block4_padding = {"paper": "VALID", "cpu": "SAME", "smoke": "SAME"}[preset]
  c.head_widths = {"paper": (64, 64), "cpu": (64, 64), "smoke": (16, 16)}[preset]  # dense layers
  c.action_width = {"paper": 256, "cpu": 64, "smoke": 16}[preset]  # action-path embedding
  c.norm_groups = {"paper": 8, "cpu": 8, "smoke": 2}[preset]  # GroupNorm groups per conv
  c.init_std = 0.01  # truncated-normal std of every kernel (paper, QT-Opt)
  # Search space (paper IV-B, Fig. 4); the dilated branches' rates (2, 4) are fixed in genotype.py.
  c.conv_filter_kernel = 3  # spatial size of the action-generated depthwise filters
  return c
