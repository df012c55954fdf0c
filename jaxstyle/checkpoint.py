"""Orbax checkpoints of a train state: save every N steps, keep K, resume from the latest.

States are saved as host (NumPy) pytrees without a device axis (see
``jaxstyle.parallel.DataParallel.get_state``), so a checkpoint does not
depend on the parallel mode or device count. Orbax writes each step into a
temporary directory and renames it when complete, so a process killed in the
middle of a save leaves no half-written step behind: ``latest_step`` ignores
the debris (and it is deleted on the next start).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxstyle.errors import CheckpointError


class Checkpointer:
  """Wrapper around ``ocp.CheckpointManager``.

  Args:
    directory: checkpoint directory (created if missing).
    every: save at steps that are multiples of ``every`` (0: only when forced).
    keep: number of most recent checkpoints to keep (None: all).
    async_save: write in a background thread (``wait`` blocks until done).
  """

  def __init__(self, directory: str, every: int = 1000, keep: int | None = 3,
               async_save: bool = True):
    self.directory = os.path.abspath(directory)
    self.every = int(every)
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=max(self.every, 1), max_to_keep=keep, create=True,
        cleanup_tmp_directories=True, enable_async_checkpointing=async_save)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    """Step of the newest complete checkpoint, or None."""
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def should_save(self, step: int) -> bool:
    return self.every > 0 and step % self.every == 0

  def save(self, step: int, state: Any | Callable[[], Any], force: bool = False) -> bool:
    """Saves ``state`` (a host pytree, or a function returning one) at ``step`` when due.

    Returns True if a save was started. With async saving the state must not
    be mutated afterwards (host NumPy copies are safe).
    """
    if not (force or self.should_save(step)):
      return False
    if step in self.manager.all_steps():
      return False
    host_state = state() if callable(state) else state
    return bool(self.manager.save(step, args=ocp.args.StandardSave(host_state), force=True))

  def restore(self, template: Any, step: int | None = None) -> Any:
    """The state saved at ``step`` (default: latest) with ``template``'s structure, as NumPy."""
    if step is None:
      step = self.latest_step()
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}")
    abstract = jax.tree.map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), template)
    try:
      restored = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # structure or shape mismatch, unreadable files
      raise CheckpointError(f"cannot restore step {step} from {self.directory} ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}); was it written by a run "
                            "with other model settings? Use a fresh --workdir") from e
    restored = jax.tree.map(np.asarray, restored)
    got = jax.tree.map(lambda x: (x.shape, x.dtype), restored)
    want = jax.tree.map(lambda x: (x.shape, x.dtype), abstract)
    if got != want:  # Orbax hands back the saved shapes whatever the template says
      raise CheckpointError(f"checkpoint step {step} in {self.directory} has other array shapes than "
                            "this run's state; was it written by a run with other model settings? "
                            "Use a fresh --workdir")
    return restored

  def wait(self) -> None:
    """Blocks until pending saves are on disk."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
