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


def _three_steps(directory):
  ck = checkpoint.Checkpointer(str(directory), every=1, keep=5, async_save=False)
  states = {s: _state(seed=s) for s in (1, 2, 3)}
  for s, st in states.items():
    ck.save(s, st)
  ck.close()
  return states


def _damage(step_dir, how):
  """Real damage an interrupted copy or a bad disk leaves: a truncated data file, garbage, nothing."""
  data = [p for p in step_dir.rglob("*") if p.is_file() and "ocdbt.process_0/d/" in str(p)]
  if how == "truncated":
    biggest = max(data, key=lambda p: p.stat().st_size)
    with open(biggest, "r+b") as f:
      f.truncate(100)
  elif how == "garbage_manifest":
    (step_dir / "default" / "manifest.ocdbt").write_bytes(b"garbage")
  elif how == "emptied":
    import shutil
    shutil.rmtree(step_dir)
    step_dir.mkdir()


@pytest.mark.parametrize("how", ["truncated", "garbage_manifest", "emptied"])
def test_restore_newest_falls_back_past_a_damaged_step(tmp_path, how):
  states = _three_steps(tmp_path / "ck")
  _damage(tmp_path / "ck" / "3", how)
  warnings = []
  ck = checkpoint.Checkpointer(str(tmp_path / "ck"), every=1, keep=5)
  step, restored = ck.restore_newest(_state(seed=9), warn=warnings.append)
  assert step == 2 and _equal(restored, states[2])
  assert len(warnings) == 1 and "step 3" in warnings[0] and "step 2" in warnings[0], warnings
  assert "damaged" in warnings[0] and "other model settings" not in warnings[0]
  assert ck.all_steps() == [1, 2] and (tmp_path / "ck_damaged" / "3").is_dir()
  assert ck.save(3, states[3], force=True)  # the step can be written again
  ck.wait()
  assert _equal(ck.restore(_state(seed=9), 3), states[3])
  ck.close()


def test_restore_newest_reports_a_model_mismatch_without_moving_anything(tmp_path):
  _three_steps(tmp_path / "ck")
  bigger = cgan.CGANConfig(z_dim=8, g_width=16, d_width=8, embed_dim=4, d_feature_dim=16)
  tx = train.adam(1e-3)
  template = jax.tree.map(np.asarray, train.init_cgan_state(bigger, 0, tx, tx))
  ck = checkpoint.Checkpointer(str(tmp_path / "ck"))
  with pytest.raises(checkpoint.CheckpointError, match="other model settings") as e:
    ck.restore_newest(template)
  assert not isinstance(e.value, checkpoint.DamagedCheckpointError)
  assert ck.all_steps() == [1, 2, 3] and not (tmp_path / "ck_damaged").exists()
  ck.close()


def test_restore_newest_when_every_step_is_damaged(tmp_path):
  _three_steps(tmp_path / "ck")
  for s in (1, 2, 3):
    _damage(tmp_path / "ck" / str(s), "truncated")
  ck = checkpoint.Checkpointer(str(tmp_path / "ck"))
  with pytest.raises(checkpoint.CheckpointError, match="no checkpoint .* can be read"):
    ck.restore_newest(_state())
  assert ck.all_steps() == []  # moved aside: a rerun trains from the start
  assert ck.restore_newest(_state())[0] is None
  ck.close()
