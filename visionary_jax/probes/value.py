"""Value probe: a trained Q-function's values beside the returns its dataset actually collected.

For a random sample of the dataset's transitions (s, a), the probe computes
Q(s, a) and Q(s, a') where a' is a with the gripper command flipped, and the
discounted return the episode collected from (s, a) (its Monte Carlo return).
Grouped by the gripper's state and height, it shows whether the Q-function
prefers changing the gripper's state (closing an open gripper, opening a
closed one) where the data says changing it pays: a policy that closes at
every height, or flips the gripper every step, shows up here as a preference
for "change" that does not follow the returns.

The returns are those of the data's behaviour policy and count nothing after
an episode's last transition (a truncated episode's future is lost), while Q
estimates the learned greedy policy's value: a gap between their means is
expected, and the probe reports both, not a verdict. Their ordering across
groups is what it checks.
"""

from typing import Any, Sequence

import jax
import numpy as np

from visionary_jax import action_space
from visionary_jax.episodes import dataset as dataset_lib
from visionary_jax.episodes import summary
from visionary_jax.nets import qnetwork
from visionary_jax.probes import outcome
from visionary_jax.qtopt import cem

HEIGHT_EDGES = (0.0, 0.05, 0.12)  # metres above the tray bottom: lower edges of the height groups


def discounted_returns(reward: np.ndarray, episode_length: np.ndarray, gamma: float) -> np.ndarray:
  """G_t = sum_k gamma^k r_{t+k} within each episode.

  Args:
    reward: [T] rewards of all transitions, episode after episode.
    episode_length: [E] transitions per episode (sums to T).
    gamma: discount.

  Returns:
    float64 [T].
  """
  reward = np.asarray(reward, np.float64)
  episode_length = np.asarray(episode_length, np.int64)
  if episode_length.sum() != len(reward):
    raise ValueError(f"episode lengths sum to {episode_length.sum()}, but there are {len(reward)} rewards")
  out = np.empty_like(reward)
  end = np.cumsum(episode_length)
  for start, stop in zip(end - episode_length, end):
    running = 0.0
    for t in range(stop - 1, start - 1, -1):
      running = reward[t] + gamma * running
      out[t] = running
  return out


def flip_gripper_command(action: np.ndarray) -> np.ndarray:
  """[N, 7] actions with the gripper command's one-hot (open, close) swapped."""
  out = np.array(action, copy=True)
  out[:, action_space.GRIPPER_COMMAND] = action[:, action_space.GRIPPER_COMMAND][:, ::-1]
  return out


def changes_gripper_state(action: np.ndarray, gripper_closed: np.ndarray) -> np.ndarray:
  """bool [N]: the command closes an open gripper or opens a closed one."""
  return action_space.commands_close(action) != (np.asarray(gripper_closed).reshape(-1) > 0.5)


def q_values(network: qnetwork.QNetwork, variables: Any, image: np.ndarray, actions: Sequence[np.ndarray],
             gripper_closed: np.ndarray, height: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
  """Q = sigmoid(logit) of each action set on the same states, the image trunk run once per state.

  Args:
    image: uint8 [N, S, S, 3].
    actions: K arrays [N, 7].
    gripper_closed, height: [N].

  Returns:
    K float32 arrays [N].
  """
  state = np.stack([np.asarray(gripper_closed, np.float32).reshape(-1),
                    np.asarray(height, np.float32).reshape(-1)], axis=-1)
  candidates = np.stack(actions, axis=1).astype(np.float32)  # [N, K, 7]

  @jax.jit
  def batch_q(image, candidates, state):
    embedding = network.apply(variables, image, method=qnetwork.QNetwork.encode)
    logits = network.apply(variables, embedding, cem.with_state(candidates, state), method=qnetwork.QNetwork.score)
    return qnetwork.q_value(logits)

  out = [np.asarray(batch_q(image[i:i + batch_size], candidates[i:i + batch_size], state[i:i + batch_size]))
         for i in range(0, len(image), batch_size)]
  q = np.concatenate(out)
  return [q[:, k] for k in range(len(actions))]


def _mean(x: np.ndarray) -> float | None:
  return float(np.mean(x)) if len(x) else None


def probe(network: qnetwork.QNetwork, variables: Any, data: dataset_lib.Dataset, gamma: float,
          num_transitions: int, seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
  """Q against returns on `num_transitions` transitions drawn without replacement (seeded).

  Returns:
    {"transitions", "gamma", "seed", "overall": {...}, "groups": [...]}: "overall" has the
    mean Q of the data actions, the mean return, their correlation and the share of states
    where Q prefers changing the gripper's state; each group (gripper open / closed x
    height range) has its count, the share of data actions that change the gripper's state,
    the mean return after a change and after keeping it (data actions), and the mean Q of
    changing and of keeping on all of the group's states (the data action and its flip).
  """
  if not 0 < num_transitions <= data.num_transitions:
    raise ValueError(f"num_transitions must be in [1, {data.num_transitions}] (the dataset's size), "
                     f"got {num_transitions}")
  rng = np.random.default_rng(seed)
  index = np.sort(rng.choice(data.num_transitions, num_transitions, replace=False))
  t = data.transitions(index)
  returns = discounted_returns(data.reward, data.episode_length, gamma)[index]
  change = changes_gripper_state(t["action"], t["gripper_closed"])
  q_data, q_flip = q_values(network, variables, t["image"], [t["action"], flip_gripper_command(t["action"])],
                            t["gripper_closed"], t["height"], batch_size)
  q_change = np.where(change, q_data, q_flip)
  q_keep = np.where(change, q_flip, q_data)
  closed = np.asarray(t["gripper_closed"]).reshape(-1) > 0.5
  height = np.asarray(t["height"]).reshape(-1)
  overall = {"q_data": float(q_data.mean()), "return": float(returns.mean()),
             "correlation": float(np.corrcoef(q_data, returns)[0, 1]) if returns.std() > 0 and q_data.std() > 0 else None,
             "change_preferred": float((q_change > q_keep).mean())}
  groups = []
  edges = HEIGHT_EDGES + (np.inf,)
  for gripper, in_state in (("open", ~closed), ("closed", closed)):
    for low, high in zip(edges[:-1], edges[1:]):
      m = in_state & (height >= low) & (height < high)
      groups.append({"gripper": gripper, "height": [low, None if np.isinf(high) else high], "n": int(m.sum()),
                     "change_fraction": _mean(change[m]),
                     "return_change": _mean(returns[m & change]), "return_keep": _mean(returns[m & ~change]),
                     "q_change": _mean(q_change[m]), "q_keep": _mean(q_keep[m]),
                     "change_preferred": _mean(q_change[m] > q_keep[m])})
  return {"transitions": num_transitions, "gamma": gamma, "seed": seed, "overall": overall, "groups": groups}


def attempt_discrimination(network: qnetwork.QNetwork, variables: Any, data: dataset_lib.Dataset,
                           max_attempts: int, seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
  """How well Q of closing separates the data's successful grasp attempts from the failed ones.

  An attempt is a terminal transition whose action closes the open gripper; its reward is its
  outcome, so Q(s, a) there is a classifier of "closing here succeeds" from the image, trained
  without bootstrapping. Near 0.5 AUC means the network cannot tell from the image whether the
  gripper is over an object, and a greedy policy then closes wherever closing pays on average.

  Returns:
    {"attempts", "success_rate", "auc": P(Q of a success > Q of a failure), ties counting half,
    "q_success", "q_failure": mean Q of each, "low_attempts", "low_auc": the same below the
    first height edge (5 cm), where the height alone no longer tells the outcome}; an AUC is None
    without both outcomes, and all but the counts are None when no close ends an episode.
  """
  open_before = np.asarray(data.gripper_closed).reshape(-1)[data.frame] < 0.5  # per frame -> per transition
  candidates = np.flatnonzero(summary.grasp_attempts(data) & open_before)
  if not len(candidates):  # stacking: a close picks a block up and the episode goes on
    return {"attempts": 0, "success_rate": None, "auc": None, "q_success": None, "q_failure": None,
            "low_attempts": 0, "low_auc": None}
  rng = np.random.default_rng(seed)
  index = np.sort(rng.choice(candidates, min(max_attempts, len(candidates)), replace=False))
  t = data.transitions(index)
  success = np.asarray(t["reward"]).reshape(-1) > 0.5
  (q,) = q_values(network, variables, t["image"], [t["action"]], t["gripper_closed"], t["height"], batch_size)
  low = np.asarray(t["height"]).reshape(-1) < HEIGHT_EDGES[1]
  return {"attempts": int(len(index)), "success_rate": float(success.mean()), "auc": outcome.auc(q, success),
          "q_success": _mean(q[success]), "q_failure": _mean(q[~success]),
          "low_attempts": int(low.sum()), "low_auc": outcome.auc(q[low], success[low])}


def scene_dependence(q_maps: np.ndarray) -> dict[str, float]:
  """How much the x-y preference of Q depends on the scene: a two-way decomposition of the maps.

  Args:
    q_maps: float [N, G, G], Q of a grid of x-y moves at N start states (scenes).

  Returns:
    {"action_variance": variance over moves of the scenes' mean map, "scene_variance": variance
    over scenes of each map's mean, "interaction_variance": the rest, "interaction_share":
    interaction / (interaction + action), 0 when every scene ranks the moves alike,
    "argmax_agreement": the share of scenes whose best move is the most common best move}.
  """
  q = np.asarray(q_maps, np.float64).reshape(len(q_maps), -1)
  scene_mean = q.mean(axis=1, keepdims=True)
  action_mean = q.mean(axis=0, keepdims=True)
  interaction = q - scene_mean - action_mean + q.mean()
  action_var, interaction_var = float(action_mean.var()), float(interaction.var())
  best = np.argmax(q, axis=1)
  return {"action_variance": action_var, "scene_variance": float(scene_mean.var()),
          "interaction_variance": interaction_var,
          "interaction_share": interaction_var / (interaction_var + action_var) if interaction_var + action_var else 0.0,
          "argmax_agreement": float(np.bincount(best).max() / len(best))}


def start_state_maps(network: qnetwork.QNetwork, variables: Any, data: dataset_lib.Dataset, num_scenes: int,
                     grid: int = 9, descent: float = -1.0, seed: int = 0, batch_size: int = 256) -> np.ndarray:
  """Q of x-y moves (descending at `descent`, yaw kept, gripper open) at the first state of episodes.

  Every episode starts with the gripper at the same pose, so the maps differ only through the image.

  Returns:
    float32 [num_scenes, grid, grid]: [n, i, j] is Q of the move (x_j, y_i), x and y in linspace(-1, 1, grid).
  """
  if not 0 < num_scenes <= data.num_episodes:
    raise ValueError(f"num_scenes must be in [1, {data.num_episodes}] (the dataset's episodes), got {num_scenes}")
  starts = np.concatenate([[0], np.cumsum(data.episode_length)[:-1]])
  index = np.sort(np.random.default_rng(seed).choice(starts, num_scenes, replace=False))
  t = data.transitions(index)
  x, y = np.meshgrid(np.linspace(-1.0, 1.0, grid, dtype=np.float32), np.linspace(-1.0, 1.0, grid, dtype=np.float32))
  continuous = np.stack([x.ravel(), y.ravel(), np.full(grid * grid, descent, np.float32),
                         np.zeros(grid * grid, np.float32)], axis=-1)  # [G * G, 4], yaw parameter 0
  grid_moves = np.asarray(cem.to_action(continuous, np.zeros(grid * grid, bool)))  # [G * G, 7], gripper open
  moves = [np.broadcast_to(move, (num_scenes, action_space.ACTION_DIM)) for move in grid_moves]
  q = q_values(network, variables, t["image"], moves, t["gripper_closed"], t["height"], batch_size)
  return np.stack(q, axis=1).reshape(num_scenes, grid, grid)


def markdown(result: dict[str, Any]) -> str:
  """The probe's groups as a Markdown table."""
  f = lambda x: "-" if x is None else f"{x:.3f}"
  rows = ["| gripper | height (m) | n | data changes | return after change / keep | Q change / keep | "
          "Q prefers change |", "|---|---|---|---|---|---|---|"]
  for g in result["groups"]:
    low, high = g["height"]
    span = f"{low:.2f}-{high:.2f}" if high is not None else f">= {low:.2f}"
    rows.append(f"| {g['gripper']} | {span} | {g['n']} | {f(g['change_fraction'])} | "
                f"{f(g['return_change'])} / {f(g['return_keep'])} | {f(g['q_change'])} / {f(g['q_keep'])} | "
                f"{f(g['change_preferred'])} |")
  return "\n".join(rows)
