"""Tests of jaxstyle.runlock (one live run per run directory) and jaxstyle.train.stop (signals)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from jaxstyle import errors
from jaxstyle.runlock import RunLock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOLD = """
import sys, time
sys.path.insert(0, {root!r})
from jaxstyle.runlock import RunLock
RunLock({path!r}).acquire()
print("held", flush=True)
time.sleep(60)
"""


def _hold(path):
  proc = subprocess.Popen([sys.executable, "-c", HOLD.format(root=ROOT, path=str(path))],
                          stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def test_a_live_holder_is_refused_by_name_and_a_dead_one_is_taken_over(tmp_path):
  holder = _hold(tmp_path)
  try:
    with pytest.raises(errors.RunDirBusyError, match=f"in use by pid {holder.pid} on host"):
      RunLock(str(tmp_path)).acquire()
  finally:
    holder.kill()  # SIGKILL: no chance to clean up; the kernel drops the flock
    holder.wait()
  warnings = []
  lock = RunLock(str(tmp_path)).acquire(warn=warnings.append)
  assert len(warnings) == 1 and f"stale lock of pid {holder.pid}" in warnings[0]
  assert "no longer running" in warnings[0]
  assert f'"pid": {os.getpid()}' in (tmp_path / ".lock").read_text()
  lock.release()
  assert (tmp_path / ".lock").read_text() == ""  # released cleanly: the next run gets no warning
  warnings.clear()
  RunLock(str(tmp_path)).acquire(warn=warnings.append).release()
  assert warnings == []


STOP = """
import os, signal, sys, time
sys.path.insert(0, {root!r})
from jaxstyle.train.stop import StopRequest
with StopRequest() as stop:
  print("ready", flush=True)
  while not stop.requested:
    time.sleep(0.01)
  print("requested", stop.name, flush=True)
  time.sleep({linger})
print("left", flush=True)
signal.raise_signal(signal.SIGTERM)  # the previous (default) handler is back
"""


def _rest(proc):
  """What the process writes until it exits. Read through the same text wrappers as the
  readline() calls: communicate() reads the raw pipes and would miss lines that readline()
  had already buffered (it did, under load, for the "left" printed right after "requested")."""
  proc.wait(timeout=20)
  return proc.stdout.read(), proc.stderr.read()


@pytest.mark.parametrize("second", [False, True])
def test_stop_request_records_one_signal_and_a_second_exits_at_once(second):
  proc = subprocess.Popen([sys.executable, "-c", STOP.format(root=ROOT, linger=30 if second else 0)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "ready"
  proc.send_signal(signal.SIGINT)
  assert proc.stdout.readline().strip() == "requested SIGINT"
  if second:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = _rest(proc)
    assert time.monotonic() - t0 < 10  # not after the 30 s the "step" would take
    assert proc.returncode == 130 and "SIGINT again: exiting at once" in err
    assert "left" not in out
  else:
    out, err = _rest(proc)
    assert out.strip() == "left" and proc.returncode == -signal.SIGTERM
