"""Tests of jaxstyle.checkpoint: Orbax round trips, save policy, errors."""

import jax
import numpy as np
import pytest

from jaxstyle import checkpoint, train
from jaxstyle.nets import cgan

TINY = cgan.CGANConfig(z_dim=8, g_width=8, d_width=8, embed_dim=4, d_feature_dim=16)


def _state(seed=0):
  tx = train.adam(1e-3)
  state = jax.tree.map(np.asarray, train.init_cgan_state(TINY, seed, tx, tx))
  # Make the optimizer state non-trivial so its round trip is checked too.
  return state.replace(step=np.int32(7),
                       opt_state=jax.tree.map(lambda x: x + 1 if x.dtype.kind == "f" else x,
                                              state.opt_state))


def _equal(a, b):
  return jax.tree.all(jax.tree.map(
      lambda x, y: np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y), a, b))


def test_round_trip_is_bit_exact(tmp_path):
  state = _state()
  ck = checkpoint.Checkpointer(str(tmp_path), every=1, keep=2)
  assert ck.latest_step() is None
  assert ck.save(7, state)
  ck.wait()
  restored = ck.restore(_state(seed=1))  # template: same structure, other values
  ck.close()
  assert isinstance(restored, train.TrainState)
  assert _equal(restored, state)
  assert not _equal(_state(seed=1), state)


def test_save_policy_and_keep(tmp_path):
  ck = checkpoint.Checkpointer(str(tmp_path), every=3, keep=2)
  state = _state()
  started = [s for s in range(1, 11) if ck.save(s, lambda: state)]
  assert started == [3, 6, 9]
  assert ck.save(10, state, force=True)
  ck.wait()
  assert ck.all_steps() == [9, 10] and ck.latest_step() == 10
  ck.close()
  # A new manager on the same directory sees the same checkpoints (resume).
  again = checkpoint.Checkpointer(str(tmp_path), every=3, keep=2)
  assert again.latest_step() == 10
  again.close()


def test_restore_errors(tmp_path):
  ck = checkpoint.Checkpointer(str(tmp_path / "empty"))
  with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
    ck.restore(_state())
  ck.close()
  ck = checkpoint.Checkpointer(str(tmp_path / "full"))
  ck.save(1, _state(), force=True)
  ck.wait()
  bigger = cgan.CGANConfig(z_dim=8, g_width=16, d_width=8, embed_dim=4, d_feature_dim=16)
  tx = train.adam(1e-3)
  template = jax.tree.map(np.asarray, train.init_cgan_state(bigger, 0, tx, tx))
  with pytest.raises(checkpoint.CheckpointError, match="other model settings"):
    ck.restore(template)
  ck.close()
