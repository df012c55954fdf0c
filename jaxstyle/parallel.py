"""Data parallelism: one per-device step, three ways to run it.

``DataParallel(mode)`` runs a step written per device with the named batch
axis ``jaxstyle.train.state.AXIS`` (see jaxstyle/train/state.py):

* ``"jit"``: one device. The step is jitted inside a ``jax.shard_map`` over a
  one-device mesh, so the very same per-device code (with its collectives over
  an axis of size 1, which are identities) runs unchanged.
* ``"shard_map"`` (default): ``jax.shard_map`` over a 1-D mesh of every global
  device (all processes), ``check_vma=True``; the state is replicated
  (``P()``), the batch split along its first axis (``P("batch")``).
* ``"pmap"``: ``jax.pmap`` over the local devices of every process; the state
  carries a leading device axis.

The train state crosses this boundary as a host (NumPy) pytree without any
device axis: ``put_state`` / ``get_state`` convert, so checkpoints do not
depend on the mode or the device count. Each process hands ``put_batch`` its
own slice of the global batch (``jaxstyle.data.BatchIterator`` makes them);
its size must divide evenly over the process's local devices.

Mesh arrays (shard_map) and pmap outputs must not be mixed: keep one
``DataParallel`` per run.

``request_cpu_devices(n)`` splits the host CPU into ``n`` JAX devices when the
backend has not started yet (it can only be set before the first JAX
operation; it never starts the backend itself) and says whether it could.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxstyle.errors import ConfigError
from jaxstyle.train.state import AXIS

MODES = ("jit", "shard_map", "pmap")


def request_cpu_devices(count: int) -> bool:
  """Asks for ``count`` host CPU devices; False if JAX had already started (count unchanged).

  Never starts the backend itself, so flags read at start-up (``XLA_FLAGS``) can still be set.
  """
  if not count:
    return True
  try:
    jax.config.update("jax_num_cpu_devices", count)
  except RuntimeError:  # the backend has started: the count is fixed for this process
    return False
  return True


def initialize_distributed(coordinator_address: str | None, num_processes: int | None,
                           process_id: int | None, cpu_collectives: str = "gloo") -> bool:
  """Joins a multi-process JAX job (call before any other JAX use); False if single-process.

  Args:
    coordinator_address: ``host:port`` of process 0, or None for a single process.
    num_processes: total number of processes.
    process_id: this process's index, 0..num_processes-1.
    cpu_collectives: CPU cross-process collectives implementation ("gloo").
  """
  if coordinator_address is None and num_processes in (None, 1):
    return False
  if coordinator_address is None or num_processes is None or process_id is None:
    raise ConfigError("multi-process runs need all of --coordinator_address, --num_processes and "
                      "--process_id")
  if num_processes < 1 or not 0 <= process_id < num_processes:
    raise ConfigError(f"--process_id {process_id} must be in 0..{num_processes - 1} "
                      f"(--num_processes {num_processes})")
  if cpu_collectives:
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id)
  return True


class DataParallel:
  """Runs per-device steps under ``mode`` (one of ``MODES``)."""

  def __init__(self, mode: str = "shard_map", axis_name: str = AXIS):
    if mode not in MODES:
      raise ConfigError(f"unknown --parallel mode {mode!r}; choose one of {', '.join(MODES)}")
    self.mode = mode
    self.axis_name = axis_name
    if mode == "jit":
      if jax.process_count() > 1:
        raise ConfigError("--parallel=jit runs on one device of one process; use shard_map or pmap "
                          "with several processes")
      self.devices = [jax.local_devices()[0]]
    else:
      self.devices = list(jax.devices())
    self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
    self.mesh = None
    if mode in ("jit", "shard_map"):
      self.mesh = jax.make_mesh((len(self.devices),), (axis_name,), devices=self.devices)

  @property
  def num_devices(self) -> int:
    """Devices the global batch is split over (all processes)."""
    return len(self.devices)

  @property
  def num_local_devices(self) -> int:
    return len(self.local_devices)

  def check_batch_size(self, global_batch_size: int) -> None:
    """Raises ConfigError unless the global batch splits evenly over the devices."""
    if global_batch_size <= 0 or global_batch_size % self.num_devices:
      raise ConfigError(f"--batch_size {global_batch_size} is not divisible by the number of devices "
                        f"({self.num_devices}, --parallel={self.mode}); use a multiple of "
                        f"{self.num_devices}")

  # --- compiling -----------------------------------------------------------------------------

  def compile(self, step: Callable, donate_state: bool = True) -> Callable:
    """``step(state, batch) -> (state, metrics)`` per device -> the same on device state/batches.

    The returned function takes what ``put_state`` / ``put_batch`` return and
    gives (device state, metrics); pass the metrics through ``get_metrics``.
    """
    donate = (0,) if donate_state else ()
    if self.mode == "pmap":
      return jax.pmap(step, axis_name=self.axis_name, donate_argnums=donate,
                      devices=self.devices)
    mapped = jax.shard_map(step, mesh=self.mesh, in_specs=(P(), P(self.axis_name)),
                           out_specs=(P(), P()), check_vma=True)
    return jax.jit(mapped, donate_argnums=donate)

  # --- moving data ---------------------------------------------------------------------------

  def put_state(self, host_state: Any) -> Any:
    """Host pytree (no device axis) -> replicated device state for this mode."""
    if self.mode == "pmap":
      n = self.num_local_devices
      # pmap shards host arrays over its devices on the first call; outputs stay there.
      return jax.tree.map(lambda x: np.ascontiguousarray(
          np.broadcast_to(np.asarray(x), (n,) + np.shape(x))), host_state)
    sharding = NamedSharding(self.mesh, P())
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                        host_state)

  def get_state(self, device_state: Any) -> Any:
    """Device state -> host NumPy pytree without a device axis (replica 0)."""
    def get(x):
      if isinstance(x, jax.Array):
        # Replica 0 (pmap: its slice, no device axis). A real copy, not a view of the device
        # buffer: the buffer is donated to the next step while an async save may still read it.
        return np.array(x.addressable_data(0), copy=True)
      return np.asarray(x)[0] if self.mode == "pmap" else np.asarray(x)  # not yet on device
    return jax.tree.map(get, device_state)

  def put_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's slice of the global batch -> a device batch for this mode.

    Each array (of a possibly nested dict) has shape [local_batch, ...] with
    local_batch divisible by the number of local devices.
    """
    n = self.num_local_devices

    def put(v):
      v = np.asarray(v)
      if v.shape[0] % n:
        raise ConfigError(f"batch of {v.shape[0]} examples per process is not divisible by the "
                          f"{n} local devices")
      if self.mode == "pmap":
        return v.reshape((n, v.shape[0] // n) + v.shape[1:])
      return jax.make_array_from_process_local_data(NamedSharding(self.mesh, P(self.axis_name)), v)

    return jax.tree.map(put, dict(local_batch))

  def get_metrics(self, metrics: dict[str, jax.Array]) -> dict[str, float]:
    """Device metrics (already averaged over devices) -> Python floats."""
    return {k: float(np.asarray(v.addressable_data(0)).reshape(-1)[0]) for k, v in metrics.items()}
