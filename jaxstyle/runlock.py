"""One live run per run directory: an advisory lock on ``RUN/.lock``.

``RunLock(run_path).acquire()`` takes an exclusive ``fcntl.flock`` on the
lock file and writes who holds it (pid, host, start time, command line). The
kernel releases a flock when its process ends, however it ends (SIGKILL
included), so a lock can never outlive its holder on this host; ``release``
(also called at exit) empties the file. A lock file that still names a holder
while nobody holds the lock was left by a process that died: ``acquire``
reports it (``warn``) and takes over. A second live process is refused with
a ``RunDirBusyError`` naming the holder.

The lock is advisory and host-local (flock semantics); run directories on
network filesystems shared by several hosts need one run at a time by
convention.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import sys
import time
from typing import Callable

from jaxstyle.errors import RunDirBusyError, print_warning

LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # exists, owned by someone else
    return True
  return True


def _read_holder(f) -> dict:
  f.seek(0)
  text = f.read().strip()
  if not text:
    return {}
  try:
    holder = json.loads(text)
  except ValueError:
    return {"unreadable": text[:80]}
  return holder if isinstance(holder, dict) else {"unreadable": text[:80]}


def describe(holder: dict) -> str:
  """``pid 123 on host h since 2026-12-03 08:00:00 (python train_cgan.py ...)``."""
  if "unreadable" in holder:
    return f"an unknown process (lock file reads {holder['unreadable']!r})"
  started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("time", 0)))
  argv = holder.get("argv") or ["?"]
  command = os.path.basename(str(argv[0]))
  return f"pid {holder.get('pid')} on host {holder.get('host')} since {started} ({command})"


class RunLock:
  """The lock of the run directory ``path`` (see the module docstring)."""

  def __init__(self, path: str):
    self.path = os.path.join(os.path.abspath(path), LOCK_NAME)
    self._file = None

  @property
  def held(self) -> bool:
    return self._file is not None

  def acquire(self, warn: Callable[[str], None] | None = None) -> "RunLock":
    """Takes the lock or raises ``RunDirBusyError`` naming the live holder."""
    warn = warn or print_warning
    if self._file is not None:
      return self
    f = open(self.path, "a+")  # pylint: disable=consider-using-with  (held until release)
    try:
      fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _read_holder(f)
      f.close()
      raise RunDirBusyError(
          f"--workdir {os.path.dirname(self.path)} is in use by {describe(holder)}; wait for that "
          "run to end (or stop it), or use another --workdir") from None
    old = _read_holder(f)
    if old:
      pid = old.get("pid")
      state = "no longer running" if isinstance(pid, int) and not _pid_alive(pid) else (
          "ended without releasing it")
      warn(f"--workdir {os.path.dirname(self.path)}: stale lock of {describe(old)}, {state}; "
           "taking it over")
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(),
                        "argv": list(sys.argv)}) + "\n")
    f.flush()
    self._file = f
    atexit.register(self.release)
    return self

  def release(self) -> None:
    """Empties the lock file and releases the lock (idempotent)."""
    f, self._file = self._file, None
    if f is None:
      return
    try:
      f.seek(0)
      f.truncate()
      f.flush()
    except OSError:  # e.g. a full disk: the kernel still drops the lock below
      pass
    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    f.close()

  def __enter__(self) -> "RunLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
