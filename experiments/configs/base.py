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
  # Kernels: truncated normal with std 1/sqrt(fan_in) (visionary_jax/nets/layers.py:fan_in_init), except
  c.generator_init_std = 0.01  # std of the dense layers generating the Hadamard map and conv filters
  # Search space (paper IV-B, Fig. 4); the dilated branches' rates (2, 4) are fixed in genotype.py.
  c.conv_filter_kernel = 3  # spatial size of the action-generated depthwise filters
  c.height_scale = 5.0  # metres -> the embedding's input: the workspace's 0-0.3 m become 0-1.5
  c.initial_q = 0.5  # the untrained network's Q (output bias logit(initial_q)); set per task in task_config
  c.coord_channels = False  # append x, y coordinate channels to the image (CoordConv), so convs know where
  return c


def train(preset: str) -> ml_collections.ConfigDict:
  """QT-Opt learner (visionary_jax.qtopt): optimisers, Bellman target, schedule, checkpoints."""
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.steps = {"paper": 80_000, "cpu": 2_000, "smoke": 6}[preset]  # gradient steps of the run
  # Weights theta (paper IV-E: SGD, momentum 0.958, lr 0.0044, L2 9e-5 on weights).
  c.optimizer = {"paper": "sgd", "cpu": "adam", "smoke": "sgd"}[preset]  # "sgd" (momentum) or "adam"
  c.learning_rate = {"paper": 0.0044, "cpu": 1e-3, "smoke": 0.0044}[preset]  # constant (cpu: see learning check)
  c.lr_schedule = "constant"  # "constant", or "cosine": decays over `steps` to lr_final_fraction * learning_rate
  c.lr_final_fraction = 0.0  # cosine schedule's final learning rate, as a fraction of learning_rate
  c.momentum = 0.958  # SGD momentum (ignored by adam)
  c.l2 = 9e-5  # L2 coefficient on kernels: adds l2 * w to their gradients
  # Architecture logits phi (Eq. 2): same loss, own optimiser partition.
  c.arch_optimizer = {"paper": "sgd", "cpu": "adam", "smoke": "sgd"}[preset]  # "sgd" or "adam"
  c.arch_learning_rate = {"paper": 0.0044, "cpu": 3e-3, "smoke": 0.0044}[preset]  # cpu: with Adam
  c.arch_momentum = 0.958  # SGD momentum of the architecture partition (ignored by adam)
  c.arch_l2 = 0.0  # L2 coefficient on the architecture logits
  # Bellman target (QT-Opt clipped double Q). The targets are paced to the run: value moves back about
  # one episode step per lag refresh, so the lag is a small fraction of `steps` (paper: 6,000 of 80,000).
  c.gamma = 0.9  # discount
  c.polyak = {"paper": 0.9999, "cpu": 0.98, "smoke": 0.5}[preset]  # target1 <- p * target1 + (1 - p) * online
  c.lag = {"paper": 6000, "cpu": 100, "smoke": 2}[preset]  # every `lag` steps target2 <- target1
  # "cem": a' = CEM argmax of Q_target1 at s' (QT-Opt, the config's `cem` section);
  # "data": a' = the data's next action (one-step / SARSA), the policy alone maximises; 4x faster at
  # `cpu`, but below the CEM target at steps 500 and 1,000 of the A/B (docs/results/learning/README.md).
  c.target = "cem"
  # "local": the best under Q_target1 of the data's next action (either gripper command) and
  # `local_actions` perturbations of its translation with std `local_std` (action units).
  c.local_actions = 8
  c.local_std = 0.3
  c.augment_shift = {"paper": 0, "cpu": 0, "smoke": 2}[preset]  # random-shift pixels of s and s', 0: off
  # Conservative term (CQL): weight times logsumexp of the Q logits of the data's action and of other
  # actions at the same state, minus the data action's; keeps the policy's CEM inside the data.
  c.conservative_weight = 0.0  # 0: off
  c.conservative_actions = 8  # uniform actions per state
  c.conservative_batch_actions = 0  # data actions of other transitions in the batch, per state
  # tau of the log loss on bootstrapping transitions: > 0.5 fits an upper expectile of the targets the
  # data's next actions give (an in-sample maximum, IQL style); 0.5: the plain log loss.
  c.expectile = 0.5
  # Host loop.
  c.log_every = {"paper": 100, "cpu": 50, "smoke": 1}[preset]  # steps between metrics records
  c.checkpoint_every = {"paper": 1000, "cpu": 500, "smoke": 2}[preset]  # steps between checkpoints
  c.keep_checkpoints = 3  # newest checkpoints kept in the workdir
  c.eval_every = {"paper": 1000, "cpu": 500, "smoke": 0}[preset]  # steps between evaluations, 0: never
  c.eval_trials = {"paper": 200, "cpu": 200, "smoke": 2}[preset]  # PyBullet trials per evaluation (test objects)
  c.eval_workers = {"paper": 2, "cpu": 2, "smoke": 0}[preset]  # evaluation processes, 0: in the trainer
  # Weights the evaluations and the export use: "online", or "target", the Polyak average (Q_target1). At
  # `cpu` the online weights scored 0.030-0.335 at checkpoints where their average scored 0.17-0.23
  # (docs/results/learning/README.md): the average takes out the iterate's noise.
  c.export_weights = {"paper": "online", "cpu": "target", "smoke": "online"}[preset]
  c.dataset_dir = ""  # episodes directory from experiments/collect.py (required by experiments/train.py)
  return c


def cem(preset: str, task: str) -> ml_collections.ConfigDict:
  """Cross-entropy method over actions (visionary_jax.qtopt.cem); QT-Opt uses 64 / 6 / 2.

  One section serves the policy and the "cem" Bellman target.
  """
  check_preset(preset)
  _check_task(task)
  c = ml_collections.ConfigDict()
  c.num_samples = {"paper": 64, "cpu": 64, "smoke": 16}[preset]  # candidate actions per iteration
  c.num_elites = {"paper": 6, "cpu": 6, "smoke": 4}[preset]  # best candidates the fit uses
  c.iterations = 2  # sample-and-refit rounds
  c.variance_floor = 1e-4  # minimum variance of each continuous dimension after a refit
  c.probability_floor = 0.05  # minimum probability of each gripper command after a refit
  # The grasping script never rotates (its yaw change is 0), so yaw is kept; the stacking script turns.
  c.search_yaw = {"grasping": False, "stacking": True}[task]
  return c


TASKS = ("grasping", "stacking")


def _check_task(task: str) -> str:
  if task not in TASKS:
    raise ValueError(f"config task must be one of {TASKS}, got {task!r}")
  return task


def env(preset: str, task: str) -> ml_collections.ConfigDict:
  """The PyBullet task (visionary_jax.envs); physics is the same at every preset."""
  check_preset(preset)
  _check_task(task)
  c = ml_collections.ConfigDict()
  c.image_size = network(preset).image_size  # camera image side, pixels; task_config ties it to the network
  c.camera_fov = 40.0  # vertical field of view of the fixed camera, degrees (28 frames the tray)
  c.renderer = "tiny"  # "tiny" (TinyRenderer, CPU) or "egl" (PyBullet's EGL plugin, if it loads)
  c.max_steps = {"grasping": 15, "stacking": 30}[task]  # actions per episode before truncation
  c.num_objects = {"grasping": 5, "stacking": 2}[task]  # random objects, or blocks to stack
  c.split = "train"  # grasping object set: "train" (900 objects) or "test" (100)
  c.max_displacement = 0.06  # metres per step along each axis at |action| = 1
  c.max_rotation = 0.785  # radians of yaw per step at the extreme of the sin/cos encoding
  c.time_step = 1.0 / 240.0  # physics step, seconds
  c.solver_iterations = 30  # PyBullet numSolverIterations (150 in the peer env; 20 breaks stacking)
  c.action_repeat = 40  # physics steps per arm motion
  c.settle_steps = 100  # physics steps for the objects dropped together at reset
  c.gripper_steps = 30  # physics steps to open or close the fingers
  c.lift_steps = 60  # grasping: physics steps of the lift after a close command
  c.stable_steps = 48  # stacking: physics steps a released stack must stay at rest
  return c


def collect(preset: str, task: str) -> ml_collections.ConfigDict:
  """Offline data collection (experiments/collect.py)."""
  check_preset(preset)
  _check_task(task)
  c = ml_collections.ConfigDict()
  c.num_episodes = {"paper": 100_000, "cpu": 5_000, "smoke": 12}[preset]  # dataset size target
  c.episodes_per_shard = {"paper": 100, "cpu": 50, "smoke": 3}[preset]  # one shard file each
  c.local_workers = {"paper": 2, "cpu": 2, "smoke": 1}[preset]  # worker processes per machine
  c.policy = "scripted"  # "scripted" (Mixed script / random episodes), "random", or "export" (export_dir's policy)
  c.export_dir = ""  # policy "export": an export directory; its CEM acts, with `noise` and `random_action_prob`
  # Fraction of episodes that follow the script; sets the success fraction (data/README.md).
  c.scripted_fraction = {"grasping": 0.8, "stacking": 0.8}[task]
  c.noise = 0.1  # std of Gaussian noise on scripted translations, in action units
  c.random_action_prob = 0.05  # per step, a scripted episode takes a uniform random action
  # Grasping script's exploration (visionary_jax/envs/policies.py:ScriptedGrasping); 0 for stacking.
  c.aim_noise = {"grasping": 0.01, "stacking": 0.0}[task]  # metres, per-episode aim offset std
  c.diagonal_prob = {"grasping": 0.5, "stacking": 0.0}[task]  # episodes descending while approaching
  c.early_close_prob = {"grasping": 0.06, "stacking": 0.0}[task]  # per step, close where it is
  c.random_aim_prob = {"grasping": 0.35, "stacking": 0.0}[task]  # episodes aiming at a random tray point
  c.approach_offset = 0.0  # metres, radius of the disc the script descends in beside the object
  c.misdirected_close_prob = 0.0  # approach_offset episodes whose close moves in a random direction
  return c


def replay(preset: str) -> ml_collections.ConfigDict:
  """Replay sampler over the collected shards (visionary_jax.episodes.sampler)."""
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.batch_size = {"paper": 4096, "cpu": 256, "smoke": 8}[preset]  # global transitions per batch
  c.prefetch = 4  # batches prepared ahead by the background thread
  c.terminal_fraction = 0.0  # share of each batch drawn from terminal transitions (grasp attempts), 0: uniform
  c.max_in_memory_gb = {"paper": 16.0, "cpu": 8.0, "smoke": 1.0}[preset]  # else memory-map shards
  c.skip_bad_shards = False  # True: drop invalid shards and report them instead of failing
  return c


def study(preset: str) -> ml_collections.ConfigDict:
  """The experiment study (experiments/study.py, visionary_jax/study/runner.py): variants, seeds and budgets.

  Every (variant, seed) run searches (search variants), derives, then retrains
  the derived genotype from scratch for `retrain_steps` with the `train`
  section's hyper-parameters, as the baseline is trained. `cpu`: the learning
  recipe's 2,000 steps (docs/results/learning/README.md); one baseline run of
  2,000 steps with four 200-trial evaluations takes about 13 minutes on a 2-core
  x86 CPU with train.target "data" (3.0-3.5 steps/s) and about 50 minutes with
  the default "cem" target (0.5-0.67 steps/s). Run parts of the study with --variants / --seeds;
  rerunning a command resumes it.
  """
  check_preset(preset)
  c = ml_collections.ConfigDict()
  # Variants run: baseline, fusion_only (supernet only), attention_only (peer attention only),
  # visionary (both), evolution (regularized evolution), transfer (needs transfer_genotype).
  c.variants = ("baseline", "fusion_only", "attention_only", "visionary", "evolution")
  c.seeds = {"paper": 15, "cpu": 5, "smoke": 2}[preset]  # runs per variant, seeds 0 .. seeds - 1
  c.search_steps = {"paper": 80_000, "cpu": 2000, "smoke": 4}[preset]  # gradient steps of one one-shot search
  c.retrain_steps = {"paper": 80_000, "cpu": 2000, "smoke": 4}[preset]  # steps of every final training run
  c.eval_every = {"paper": 1000, "cpu": 500, "smoke": 2}[preset]  # steps between evaluations of a retrain
  # 200 trials (the paper's) take about 25 s at `cpu` with 2 workers; 50 gave +-0.13 intervals.
  c.eval_trials = {"paper": 200, "cpu": 200, "smoke": 1}[preset]  # PyBullet trials per evaluation
  c.transfer_genotype = ""  # genotype JSON trained by the `transfer` variant (e.g. found on grasping)
  # Regularized evolution over the same genotype space (visionary_jax/search/evolution.py). Fitness: minus the
  # held-out Bellman error after a short training run on the other episodes (visionary_jax/search/evolution_baseline.py).
  c.evolution = ml_collections.ConfigDict()
  c.evolution.population_size = {"paper": 20, "cpu": 8, "smoke": 2}[preset]  # genotypes kept alive
  c.evolution.sample_size = {"paper": 5, "cpu": 3, "smoke": 1}[preset]  # tournament size per cycle
  c.evolution.cycles = {"paper": 60, "cpu": 12, "smoke": 1}[preset]  # children after the initial population
  # Steps of each fitness run: the search's budget split over every evaluated genotype (derived here,
  # so overriding search_steps alone does not change it; the study records the budget actually used).
  c.evolution.fitness_steps = max(1, c.search_steps // (c.evolution.population_size + c.evolution.cycles))
  c.evolution.holdout_every = 5  # every 5th episode of the dataset is held out for the fitness
  c.evolution.fitness_batches = {"paper": 4, "cpu": 8, "smoke": 1}[preset]  # held-out batches of replay.batch_size
  return c


def task_config(task: str, preset: str) -> ml_collections.ConfigDict:
  """The whole config of a task (`grasping` or `stacking`) at a preset."""
  preset = check_preset(preset)
  config = ml_collections.ConfigDict()
  config.task = task
  config.preset = preset
  config.seed = 0  # every random stream of a run derives from this
  config.network = network(preset)
  # Near the data's mean discounted return (grasping 0.23; stacking's summary.json), not 0.5.
  config.network.initial_q = {"grasping": 0.25, "stacking": 0.05}[task]
  config.env = env(preset, task)
  # One value: overriding either field sets both, so the camera renders what the network reads.
  config.env.image_size = config.network.get_ref("image_size")
  config.collect = collect(preset, task)
  config.replay = replay(preset)
  config.train = train(preset)
  if task == "stacking" and preset != "paper":
    # The stacking script's successes take 12-29 steps (median 20). Under gamma 0.9 with -0.01 per step
    # a success k steps ahead is worth 1.1 * 0.9^(k-1) - 0.1, 0.05 at k = 20 and 0 at k = 24, so the
    # start states' targets are about 0; 0.97 makes it 0.52 at k = 20 and 0.37 at k = 29.
    config.train.gamma = 0.97
  config.cem = cem(preset, task)  # the policy's CEM (evaluation, export) and the "cem" target's
  config.study = study(preset)
  return config
