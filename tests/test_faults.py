"""Faults the trainers survive, against the real commands as subprocesses (issue 13).

* Two runs on one run directory: the second is refused, naming the holder.
* SIGKILL at random points (start-up, mid-training, inside an Orbax save) and
  SIGTERM at random points (a checkpoint at that step): the reruns resume and
  the final parameters are bit-identical to an uninterrupted run.
* A damaged newest checkpoint: resume falls back to the newest readable one.
* NaN in a step: the run stops naming the step and the loss term, keeping the
  last good checkpoint; ``--skip_nonfinite`` skips the update and counts it.
* A disk that fills during a checkpoint save (a small tmpfs): one clear error,
  the earlier checkpoints intact, and the run resumes once there is space.

The random points come from a seeded ``numpy`` generator, so a failure names
a reproducible schedule.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import EXPERIMENTS, ROOT, VGG_PARTIAL, run_experiment

CGAN = ["--batch_size=16", "--z_dim=8", "--g_width=8", "--d_width=8", "--embed_dim=4",
        "--d_feature_dim=16", "--progress=false", "--seed=3", "--eval_every=0", "--sample_every=0"]


def _cgan_flags(shared_data, workdir, *extra):
  return [f"--mnist_dir={os.path.join(shared_data, 'mnist')}", f"--workdir={workdir}", *CGAN, *extra]


def _stylizer_flags(shared_data, workdir, *extra):
  s = shared_data
  return [f"--content_dir={s}/photos/bsds500/train",
          f"--styles={s}/styles/hokusai_great_wave.jpg,{s}/styles/picabia_udnie.jpg",
          f"--vgg_weights={VGG_PARTIAL}", "--crop_size=32", "--style_size=40", "--batch_size=4",
          "--latent_dim=8", "--widths=8,16", "--stem_kernel=3", "--residual_blocks=1",
          "--encoder_hidden=16", "--encoder_taps=relu1_1,relu2_1", "--d_widths=8,16",
          "--d_feature_dim=16", "--d_steps=1", "--adv_weight=0.01", "--identity_examples=1",
          "--sample_every=0", "--eval_every=0", "--progress=false", "--seed=5",
          f"--workdir={workdir}", *extra]


def _start(script, args):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.Popen([sys.executable, os.path.join(EXPERIMENTS, script), *map(str, args)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _checkpoint(workdir, step=None):
  """The raw arrays of a checkpoint (no template: the comparison needs no model code)."""
  manager = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
  step = manager.latest_step() if step is None else step
  tree = manager.restore(step, args=ocp.args.StandardRestore())
  manager.close()
  return step, tree


def _assert_same_params(a, b, what):
  import jax
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b), what
  for x, y in zip(leaves_a, leaves_b):
    assert np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y), what


def _last_step(workdir):
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      steps = [json.loads(line)["step"] for line in f if line.strip().endswith("}")]
  except (OSError, ValueError, KeyError):
    return -1
  return max(steps, default=-1)


def _latest_checkpoint(workdir):
  d = os.path.join(workdir, "checkpoints")
  steps = [int(n) for n in os.listdir(d) if n.isdigit()] if os.path.isdir(d) else []
  return max(steps, default=0)


def _metrics_inode(workdir):
  try:
    return os.stat(os.path.join(workdir, "metrics.jsonl")).st_ino
  except OSError:
    return None


def _start_and_wait_for_step(script, args, workdir, target, timeout=300):
  """Starts a run and waits until IT has logged ``target`` (not rows left by a killed run).

  A resuming run first rewrites metrics.jsonl (a new file: a new inode), so
  rows count only once the inode changed. Returns (process, reached).
  """
  before = _metrics_inode(workdir)
  proc = _start(script, args)
  t0 = time.monotonic()
  while proc.poll() is None and time.monotonic() - t0 < timeout:
    if _metrics_inode(workdir) not in (None, before) and _last_step(workdir) >= target:
      return proc, True
    time.sleep(0.02)
  return proc, False


# ----------------------------------------------------------------------------- run-directory lock


@pytest.mark.slow  # two trainer subprocesses (about 40 s); the lock itself: core/test_runlock.py
def test_second_run_on_a_workdir_is_refused_naming_the_holder(tmp_path, shared_data):
  wd = tmp_path / "run"
  wd.mkdir()
  holder = subprocess.Popen(  # holds the lock as a running trainer does
      [sys.executable, "-c", f"import sys, time; sys.path.insert(0, {ROOT!r}); "
       f"from jaxstyle.runlock import RunLock; RunLock({str(wd)!r}).acquire(); print('held', "
       "flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    proc = run_experiment("train_cgan.py", *_cgan_flags(shared_data, wd, "--num_steps=2",
                                                        "--parallel=jit"), check=False)
  finally:
    holder.kill()
    holder.wait()
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
  assert lines[0].startswith("error: --workdir") and f"in use by pid {holder.pid}" in lines[0]
  assert not (wd / "metrics.jsonl").exists() and not (wd / "checkpoints").exists()
  # The holder died without releasing: the next run reports the stale lock and trains.
  proc = run_experiment("train_cgan.py", *_cgan_flags(shared_data, wd, "--num_steps=2",
                                                      "--parallel=jit"))
  assert f"stale lock of pid {holder.pid}" in proc.stderr and "no longer running" in proc.stderr
  assert json.loads(proc.stdout.strip().splitlines()[-1])["step"] == 2
  assert (wd / ".lock").read_text() == ""  # released at the end


def test_workdir_that_is_a_file_is_one_error_line(tmp_path, shared_data):
  f = tmp_path / "run"
  f.write_text("not a directory")
  proc = run_experiment("train_cgan.py", *_cgan_flags(shared_data, f, "--num_steps=2",
                                                      "--parallel=jit"), check=False)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
  assert "--workdir" in lines[0] and "existing file" in lines[0]
  assert f.read_text() == "not a directory"


# ----------------------------------------------------------------------------- kills and signals


TRAINERS = {
    # Enough steps after the three SIGKILLs (up to 18) for the SIGTERMs: with 24 (cGAN) and 16 (stylizer)
    # the run could end first on a fast machine.
    "cgan": ("train_cgan.py", _cgan_flags, ["--num_steps=40", "--checkpoint_every=4", "--log_every=2",
                                            "--parallel=shard_map", "--cpu_devices=2",
                                            "--lr_decay_begin=6", "--lr_decay_end=40"]),
    "stylizer": ("train_stylizer.py", _stylizer_flags, ["--num_steps=40", "--checkpoint_every=4",
                                                        "--log_every=2"]),
}


@pytest.mark.slow  # about nine training processes per trainer
@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_random_sigkill_and_sigterm_then_rerun_is_bit_identical(tmp_path, shared_data, trainer):
  script, flags, common = TRAINERS[trainer]
  rng = np.random.default_rng(13 if trainer == "cgan" else 14)
  ref = tmp_path / "ref"
  t0 = time.monotonic()
  run_experiment(script, *flags(shared_data, ref, *common))
  ref_seconds = time.monotonic() - t0
  _, want = _checkpoint(str(ref))

  wd = tmp_path / "faults"
  log = []
  # 1. SIGKILL at a random moment of start-up (before or during the first steps).
  proc = _start(script, flags(shared_data, wd, *common))
  delay = float(rng.uniform(0.1, 0.5) * ref_seconds)
  time.sleep(delay)
  proc.kill()
  proc.communicate()
  log.append(("SIGKILL at", round(delay, 2), "s", _latest_checkpoint(wd)))
  # 2. SIGKILL inside an Orbax save (the testing-only switch kills right after the save started).
  target = _latest_checkpoint(wd) + 4
  proc = _start(script, flags(shared_data, wd, *common, f"--debug_kill_at_step={target}",
                              "--debug_kill_during_save"))
  proc.communicate()
  assert proc.returncode == -9, log
  log.append(("SIGKILL inside the save of step", target, _latest_checkpoint(wd)))
  # 3-5. SIGKILL at random points of training: a random step after the resume, plus a random delay.
  for _ in range(3):
    target = _latest_checkpoint(wd) + int(rng.integers(1, 4)) * 2
    jitter = float(rng.uniform(0, 0.2))
    proc, reached = _start_and_wait_for_step(script, flags(shared_data, wd, *common), str(wd), target)
    if reached:
      time.sleep(jitter)
    proc.kill()
    proc.communicate()
    log.append(("SIGKILL after step", target, "+", round(jitter, 2), "s", _latest_checkpoint(wd)))
  # 6-7. SIGTERM at random points: a checkpoint of exactly that step, then a clean exit.
  for _ in range(2):
    target = _latest_checkpoint(wd) + int(rng.integers(1, 3)) * 2
    proc, reached = _start_and_wait_for_step(script, flags(shared_data, wd, *common), str(wd), target)
    if not reached:
      proc.communicate()
      break  # the run finished first: nothing left to interrupt
    time.sleep(float(rng.uniform(0, 0.2)))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    last = (err.strip().splitlines() or [""])[-1]
    if proc.returncode == 0 or (proc.returncode == -signal.SIGTERM and
                                _latest_checkpoint(wd) == int(common[0].split("=")[1])):
      break  # SIGTERM arrived after the last step (its checkpoint complete: at exit, the default action)
    assert proc.returncode == 128 + signal.SIGTERM, (log, err[-2000:])
    stopped_at = int(last.split(" at step ")[1].split(":")[0])
    assert last.startswith("stopped by SIGTERM") and _latest_checkpoint(wd) == stopped_at, (log, last)
    log.append(("SIGTERM, checkpoint at step", stopped_at))
  assert len(log) >= 6, log
  run_experiment(script, *flags(shared_data, wd, *common))
  step, got = _checkpoint(str(wd))
  assert step == int(common[0].split("=")[1])
  _assert_same_params(want, got, log)
  steps = [json.loads(line)["step"] for line in (wd / "metrics.jsonl").read_text().splitlines()]
  assert steps == sorted(set(steps)), (log, steps)  # no duplicated or interleaved rows


# ----------------------------------------------------------------------------- damaged checkpoints


@pytest.mark.slow  # three training processes
def test_damaged_latest_checkpoint_falls_back_and_stays_bit_identical(tmp_path, shared_data):
  common = ["--checkpoint_every=2", "--keep=5", "--log_every=2", "--parallel=jit"]
  ref = tmp_path / "ref"
  run_experiment("train_cgan.py", *_cgan_flags(shared_data, ref, "--num_steps=8", *common))
  wd = tmp_path / "run"
  run_experiment("train_cgan.py", *_cgan_flags(shared_data, wd, "--num_steps=6", *common))
  data = [p for p in (wd / "checkpoints" / "6").rglob("*") if "ocdbt.process_0/d/" in str(p)]
  with open(max(data, key=lambda p: p.stat().st_size), "r+b") as f:
    f.truncate(100)  # what a copy cut short leaves
  proc = run_experiment("train_cgan.py", *_cgan_flags(shared_data, wd, "--num_steps=8", *common))
  warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: checkpoint")]
  assert len(warnings) == 1 and "step 6" in warnings[0] and "resuming from step 4" in warnings[0]
  assert "Traceback" not in proc.stderr and "Event loop is closed" not in proc.stderr
  assert json.loads(proc.stdout.strip().splitlines()[-1])["resumed_from"] == 4
  assert (wd / "checkpoints_damaged" / "6").is_dir()
  _assert_same_params(_checkpoint(str(ref))[1], _checkpoint(str(wd))[1], "fallback resume")


# ----------------------------------------------------------------------------- NaN and Inf


@pytest.mark.slow  # three training processes
def test_nan_stops_naming_step_and_term_or_is_skipped(tmp_path, shared_data):
  common = ["--num_steps=10", "--checkpoint_every=2", "--log_every=1", "--parallel=jit"]
  wd = tmp_path / "stop"
  proc = run_experiment("train_cgan.py", *_cgan_flags(shared_data, wd, *common,
                                                      "--debug_nan_at_step=7"), check=False)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
  assert lines[0].startswith("error: step 7: non-finite loss") and "d_loss=nan" in lines[0]
  assert "last good checkpoint is step 6" in lines[0] and "--skip_nonfinite" in lines[0]
  assert _latest_checkpoint(wd) == 6
  _, kept = _checkpoint(str(wd))
  assert all(np.all(np.isfinite(x)) for x in __import__("jax").tree.leaves(kept)
             if np.asarray(x).dtype.kind == "f")

  skip = tmp_path / "skip"
  proc = run_experiment("train_cgan.py", *_cgan_flags(shared_data, skip, *common,
                                                      "--debug_nan_at_step=7", "--skip_nonfinite"))
  rows = [json.loads(line) for line in (skip / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if r["nonfinite_skipped"]] == [7]
  assert sum(r["nonfinite_skipped"] for r in rows) == 1
  _, final = _checkpoint(str(skip))
  assert all(np.all(np.isfinite(x)) for x in __import__("jax").tree.leaves(final)
             if np.asarray(x).dtype.kind == "f")


# ----------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_tmpfs(tmp_path):
  """A 1.4 MB tmpfs (root only; CI runs as root): room for two tiny cGAN checkpoints, not three."""
  mount = tmp_path / "disk"
  mount.mkdir()
  proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1400k", "tmpfs", str(mount)],
                        capture_output=True, text=True)
  if proc.returncode != 0:
    pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
  yield mount
  subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow  # two training processes
def test_disk_full_during_checkpoint_is_one_error_and_keeps_earlier_ones(small_tmpfs, tmp_path,
                                                                           shared_data):
  common = ["--num_steps=12", "--checkpoint_every=2", "--keep=10", "--log_every=2", "--parallel=jit"]
  wd = small_tmpfs / "run"
  proc = run_experiment("train_cgan.py", *_cgan_flags(shared_data, wd, *common), check=False)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
  assert "no space left on the device" in lines[0] and "are intact" in lines[0]
  kept = sorted(int(n) for n in os.listdir(wd / "checkpoints") if n.isdigit())
  assert kept and f"steps {', '.join(map(str, kept))}" in lines[0]
  assert not [n for n in os.listdir(wd / "checkpoints") if "tmp" in n]  # no partial step left
  # Move the run to a disk with space: it resumes from the newest kept checkpoint and finishes.
  moved = tmp_path / "moved"
  shutil.copytree(wd, moved)
  proc = run_experiment("train_cgan.py", *_cgan_flags(shared_data, moved, *common))
  assert json.loads(proc.stdout.strip().splitlines()[-1])["resumed_from"] == kept[-1]


def _fill(mount):
  """Fills the tmpfs to the last byte (one filler file)."""
  fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
  try:
    for chunk in (65536, 512, 1):
      try:
        while True:
          os.write(fd, b"\0" * chunk)
      except OSError:
        pass
  finally:
    os.close(fd)


def _outputs():
  """(name, write(path, variant)) for an output image, a style index and a .style profile."""
  import dataclasses

  from jaxstyle import images, retrieval
  from jaxstyle.personalize import profile as P
  from jaxstyle.retrieval import index as ix
  from jaxstyle.retrieval.descriptors import descriptor_dim

  def image(path, variant):
    rng = np.random.default_rng(variant)
    images.save_image(path, rng.random((300, 300, 3), dtype=np.float32))

  def index(path, variant):
    config = dataclasses.replace(retrieval.get_config("default"), scales=(64,), dim=16,
                                 whiten_dim=0)
    n = 200 * (variant + 1)
    rng = np.random.default_rng(variant)
    ix.save_index(ix.StyleIndex(
        config=config, vgg={"fingerprint": "ab" * 32, "source": "vgg.npz", "preprocessing": "caffe"},
        paths=[f"t{i}.png" for i in range(n)], sha256=["0" * 64] * n,
        size=np.arange(n, dtype=np.int64), mtime_ns=np.arange(n, dtype=np.int64),
        base=rng.standard_normal((n, descriptor_dim(config))).astype(np.float32), library="/lib",
        failed=[]), path)

  def profile(path, variant):
    rng = np.random.default_rng(variant)
    P.save_profile(path, P.StyleProfile(latent=rng.standard_normal(4096 * (variant + 1))))

  return {"image": (image, "out.png"), "index": (index, "lib.idx"), "profile": (profile, "me.style")}


@pytest.mark.parametrize("kind", ["image", "index", "profile"])
def test_disk_full_during_an_output_write_keeps_the_earlier_file(small_tmpfs, kind):
  write, name = _outputs()[kind]
  path = small_tmpfs / name
  write(str(path), 0)
  before = path.read_bytes()
  _fill(small_tmpfs)
  from jaxstyle.errors import JaxstyleError
  from jaxstyle.images import ImageError
  with pytest.raises((OSError, JaxstyleError, ImageError)) as e:
    write(str(path), 1)  # a bigger, different file: it cannot fit
  # Raw ENOSPC (cli.run makes it one error line naming the path) or a documented error saying so.
  assert getattr(e.value, "errno", None) == 28 or "No space left" in str(e.value), e.value
  assert path.read_bytes() == before  # the earlier output is intact
  assert sorted(os.listdir(small_tmpfs)) == sorted(["filler", name])  # no temporary file left


def test_disk_full_inside_an_async_checkpoint_save_is_one_error_without_noise(small_tmpfs, monkeypatch,
                                                                               capfd):
  """The free-space check passes (it is lied to), so the disk fills while Orbax writes."""
  import jax

  from jaxstyle import checkpoint, train
  from jaxstyle.nets import cgan

  cfg = cgan.CGANConfig(z_dim=8, g_width=8, d_width=8, embed_dim=4, d_feature_dim=16)
  tx = train.adam(1e-3)
  state = jax.tree.map(np.asarray, train.init_cgan_state(cfg, 0, tx, tx, g_ema=True))
  ck = checkpoint.Checkpointer(str(small_tmpfs / "ck"), every=1, keep=10)
  ck.save(1, state)
  ck.wait()
  monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 0, 1 << 40))
  capfd.readouterr()
  with pytest.raises(checkpoint.CheckpointError, match=r"step \d+ .*no space left.*steps 1,") as e:
    for step in range(2, 10):  # the error shows at the save that fails or at the next call
      ck.save(step, jax.tree.map(lambda x: x + step if x.dtype.kind == "f" else x, state))
    ck.wait()
  assert "filled up while writing" in str(e.value)
  out, err = capfd.readouterr()
  assert "Traceback" not in err and "No space left" not in err, err[-3000:]
  failed = int(str(e.value).split("checkpoint step ")[1].split()[0])
  assert ck.all_steps() == list(range(1, failed))  # every earlier step is complete
  assert not [n for n in os.listdir(small_tmpfs / "ck") if "tmp" in n]
  restored = ck.restore(state, 1)
  assert jax.tree.all(jax.tree.map(np.array_equal, restored, state))
  monkeypatch.undo()
  ck.close()
