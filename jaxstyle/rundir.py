"""Run directories: the one on-disk layout every experiment writes.

A run directory holds::

  config.json      every setting of the run, library versions, device count, seed
  metrics.jsonl    one JSON object per line: {"step": int, <name>: float, ...}
  checkpoints/     Orbax checkpoints (see jaxstyle.checkpoint)
  samples/         PNG grids (``save_sample``)
  tensorboard/     TensorBoard event files (``jaxstyle.tblog``): every scalar of metrics.jsonl and
                   every sample grid, written by ``log_metrics`` and ``save_sample``

Pure helpers; nothing here reads flags or the environment.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from typing import Any, Mapping

import numpy as np

from jaxstyle.errors import ConfigError, print_warning
from jaxstyle.fileio import atomic_write_text


def versions() -> dict[str, str]:
  """Versions of the libraries a result depends on."""
  out = {"python": platform.python_version()}
  for name in ("jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "numpy"):
    try:
      mod = __import__(name, fromlist=["__version__"])
      out[name] = getattr(mod, "__version__", "unknown")
    except ImportError:
      pass
  return out


def jsonable(value: Any) -> Any:
  """`value` as JSON-able data: arrays to lists or scalars, non-finite floats to their repr."""
  if isinstance(value, Mapping):
    return {str(k): jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [jsonable(v) for v in value]
  if isinstance(value, (np.generic,)):
    value = value.item()
  if hasattr(value, "shape") and hasattr(value, "dtype"):  # jax / numpy arrays
    arr = np.asarray(value)
    return arr.item() if arr.ndim == 0 else arr.tolist()
  if isinstance(value, float) and not math.isfinite(value):
    return repr(value)
  if isinstance(value, (str, int, float, bool)) or value is None:
    return value
  return str(value)


class RunDir:
  """A run directory (created on construction)."""

  _events = None  # the jaxstyle.tblog.EventWriter, opened by the first log_metrics / save_sample
  _purge_step = None  # set by truncate_metrics: TensorBoard drops older events from this step on

  def __init__(self, workdir: str):
    self.path = os.path.abspath(workdir)
    if os.path.exists(self.path) and not os.path.isdir(self.path):
      raise ConfigError(f"--workdir {self.path} is an existing file, not a directory; give a "
                        "directory (it is created if missing)")
    try:
      os.makedirs(self.path, exist_ok=True)
    except OSError as e:
      raise ConfigError(f"--workdir {self.path}: cannot create it ({e.strerror}); give a "
                        "directory you can write") from None

  def lock(self):
    """Takes the run directory's lock (``jaxstyle.runlock.RunLock``); one live run per directory.

    Raises:
      RunDirBusyError: another live process holds it (named in the message).
    """
    from jaxstyle.runlock import RunLock  # local: fcntl is POSIX-only; only trainers lock

    return RunLock(self.path).acquire()

  @property
  def config_path(self) -> str:
    return os.path.join(self.path, "config.json")

  @property
  def metrics_path(self) -> str:
    return os.path.join(self.path, "metrics.jsonl")

  @property
  def checkpoint_dir(self) -> str:
    return os.path.join(self.path, "checkpoints")

  @property
  def tensorboard_dir(self) -> str:
    return os.path.join(self.path, "tensorboard")

  @property
  def samples_dir(self) -> str:
    d = os.path.join(self.path, "samples")
    os.makedirs(d, exist_ok=True)
    return d

  def write_config(self, config: Mapping[str, Any], **extra: Any) -> dict:
    """Writes config.json: ``config`` plus versions, device count and ``extra``."""
    import jax  # local import: keeps this module importable without initialising JAX

    record = {
        "config": jsonable(config),
        "versions": versions(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "process_count": jax.process_count(),
        "backend": jax.default_backend(),
        "argv": list(sys.argv),
    }
    record.update(jsonable(extra))
    atomic_write_text(self.config_path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record

  def check_resume(self, config_cls: type, config: Any) -> None:
    """Refuses to resume a run whose ``resume=True`` settings differ from ``config``.

    Compares ``config.json``'s ``"config"`` (if the file exists) with ``config``
    via ``jaxstyle.config.resume_mismatch``.

    Raises:
      ConfigError: naming the first differing setting, or a damaged config.json.
    """
    from jaxstyle import config as cfglib  # local: keeps this module free of config imports at load

    if not os.path.exists(self.config_path):
      return
    try:
      with open(self.config_path) as f:
        old = json.load(f).get("config", {})
      if not isinstance(old, dict):
        raise ValueError(f"its \"config\" is a JSON {type(old).__name__}, not an object")
      mismatch = cfglib.resume_mismatch(config_cls, old, config)
    except (OSError, ValueError, TypeError, AttributeError, RecursionError) as e:
      raise ConfigError(f"{self.config_path} is damaged ({type(e).__name__}: {e}); restore it, "
                        "or use a fresh --workdir") from None
    if mismatch:
      raise ConfigError(f"--workdir {self.path} holds a run with {mismatch}; use a fresh --workdir "
                        "or the same settings to resume")

  def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> dict:
    """Appends one line ``{"step": step, **metrics}`` to metrics.jsonl."""
    row = {"step": int(step)}
    row.update(jsonable(dict(metrics)))
    with open(self.metrics_path, "a") as f:
      f.write(json.dumps(row, sort_keys=True) + "\n")
    self.tensorboard().scalars(step, metrics)
    return row

  def tensorboard(self):
    """This run's ``jaxstyle.tblog.EventWriter`` into ``tensorboard_dir`` (one per RunDir)."""
    if self._events is None:
      from jaxstyle import tblog  # local: tensorboardX loads only when a run logs

      self._events = tblog.EventWriter(self.tensorboard_dir, purge_step=self._purge_step)
    return self._events

  def save_sample(self, step: int, image: Any, tag: str = "samples") -> str:
    """Writes ``image`` ([H, W(, C)] float in [0, 1] or uint8) as samples/step_XXXXX.png and as
    TensorBoard image ``tag`` at ``step`` (the same pixels); returns the PNG's path."""
    from jaxstyle import images  # local: keeps this module light

    pixels = images.to_uint8(np.asarray(image))
    path = images.save_image(os.path.join(self.samples_dir, f"step_{int(step):05d}.png"), pixels)
    self.tensorboard().image(step, tag, pixels)
    return path

  def close(self) -> None:
    """Closes the TensorBoard event file (a later write opens a new one)."""
    if self._events is not None:
      self._events.close()

  def read_metrics(self) -> list[dict]:
    """All rows of metrics.jsonl (empty list if none).

    A line that is not a JSON object with an integer ``"step"`` (e.g. the
    torn last line of a process killed while appending) is left out with a
    ``warning:`` line; resuming rewrites the file without it.
    """
    if not os.path.exists(self.metrics_path):
      return []
    if os.path.isdir(self.metrics_path):
      raise ConfigError(f"{self.metrics_path} is a directory, not the metrics file; remove it or "
                        "use a fresh --workdir")
    rows = []
    with open(self.metrics_path, errors="replace") as f:
      for number, line in enumerate(f, 1):
        if not line.strip():
          continue
        try:
          row = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
          row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
          print_warning(f"{self.metrics_path} line {number} is damaged; left out")
          continue
        rows.append(row)
    return rows

  def truncate_metrics(self, after_step: int) -> None:
    """Drops metric rows with step > ``after_step`` (used when resuming), in metrics.jsonl and,
    from the next event file on, in TensorBoard (its purge step ``after_step + 1``)."""
    rows = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
    atomic_write_text(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    self.close()  # TensorBoard: the next event file hides earlier files' events after the step
    self._events, self._purge_step = None, int(after_step) + 1
