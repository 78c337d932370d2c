"""The learner's whole state as one immutable pytree."""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from visionary_jax.nets import qnetwork


@flax.struct.dataclass
class TrainState:
  """Everything an update reads and writes; a checkpoint saves exactly this.

  Attributes:
    params: network weights theta.
    arch: architecture logits phi (the `arch` collection); {} for a fixed network.
    target: {"params", "arch"} of Q_target1, the Polyak average of the online network.
    lagged: {"params", "arch"} of Q_target2, a copy of Q_target1 refreshed every `lag` steps.
    opt_state: optimiser state over {"params": params, "arch": arch}.
    step: int32 [], updates done so far.
    rng: uint32 [2], the run's key; step k uses fold_in(rng, k).
  """

  params: Any
  arch: Any
  target: Any
  lagged: Any
  opt_state: Any
  step: jax.Array
  rng: jax.Array

  @property
  def trainable(self) -> dict[str, Any]:
    return {"params": self.params, "arch": self.arch}


def as_variables(trainable: dict[str, Any]) -> dict[str, Any]:
  """{"params", "arch"} -> Flax variables, without an empty `arch` collection."""
  return {k: v for k, v in trainable.items() if k == "params" or v}


def create(network: qnetwork.QNetwork, optimizer: optax.GradientTransformation, rng: jax.Array) -> TrainState:
  """Initial state: targets equal the online network, step 0."""
  init_rng, state_rng = jax.random.split(rng)
  variables = qnetwork.init_variables(network, init_rng)
  trainable = {"params": variables["params"], "arch": variables.get("arch", {})}
  copy = lambda tree: jax.tree_util.tree_map(jnp.array, tree)
  return TrainState(params=trainable["params"], arch=trainable["arch"], target=copy(trainable),
                    lagged=copy(trainable), opt_state=optimizer.init(trainable),
                    step=jnp.zeros((), jnp.int32), rng=state_rng)
