"""Test configuration shared by every test module.

* Forces 4 host CPU devices before JAX initialises, so data-parallel code is
  exercised on every run (set XLA_FLAGS yourself to override).
* Locates the shared real data (``../shared/data`` beside the repository, or
  ``$JAXSTYLE_SHARED_DATA``). Tests that need it fail loudly if it is missing:
  CI always has it, and a silent skip would hide a broken setup.
"""

import os
import shutil
import sys

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=4").strip()

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = os.path.join(ROOT, "experiments")
for p in (ROOT, EXPERIMENTS):
  if p not in sys.path:
    sys.path.insert(0, p)

SHARED_DATA = os.environ.get("JAXSTYLE_SHARED_DATA",
                             os.path.join(os.path.dirname(ROOT), "shared", "data"))
VGG_PARTIAL = os.path.join(SHARED_DATA, "vgg19", "vgg19_imagenet_keras_conv1_1-conv3_4_PARTIAL.npz")


def _require(path):
  if not os.path.exists(path):
    pytest.fail(f"shared test data missing: {path} (set JAXSTYLE_SHARED_DATA to the shared/data folder)")
  return path


@pytest.fixture(scope="session")
def shared_data():
  """Path of ../shared/data (real MNIST, paintings, photos, textures, VGG weights)."""
  return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def vgg_partial_path():
  """Path of the real partial (conv1_1..conv3_4) Keras/Caffe VGG-19 weights."""
  return _require(VGG_PARTIAL)


@pytest.fixture(scope="session")
def vgg_partial(vgg_partial_path):
  """The real partial VGG-19 weights, loaded once per session."""
  from jaxstyle import vgg
  return vgg.load_weights(vgg_partial_path)


def run_experiment(script, *args, env=None, timeout=600, check=True):
  """Runs ``python experiments/<script> args...``; returns CompletedProcess."""
  import subprocess
  full_env = dict(os.environ)
  full_env.pop("XLA_FLAGS", None)  # subprocesses see the real device count unless asked
  if env:
    full_env.update(env)
  proc = subprocess.run([sys.executable, os.path.join(EXPERIMENTS, script), *map(str, args)],
                        capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT)
  if check and proc.returncode != 0:
    raise AssertionError(f"{script} failed ({proc.returncode}):\nSTDOUT:\n{proc.stdout[-3000:]}\n"
                         f"STDERR:\n{proc.stderr[-3000:]}")
  return proc


@pytest.fixture(scope="session")
def tiny_stylizer_run(tmp_path_factory, shared_data, vgg_partial_path):
  """A tiny trained stylizer run (bank of 2 styles + the style encoder), trained once per session.

  For the users of a run (personalization); the trainer's own tests train theirs. Under
  pytest-xdist the workers share one run: the first to take the lock trains it in the
  session's common temporary folder, the others wait and reuse it (its users only read it).
  """
  import fcntl

  import train_stylizer
  from stylizer_testlib import tiny_config
  base = tmp_path_factory.getbasetemp()
  root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
  workdir = root / "tiny_stylizer_shared"
  with open(root / "tiny_stylizer_shared.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    done = root / "tiny_stylizer_shared.done"
    if not done.exists():
      shutil.rmtree(workdir, ignore_errors=True)
      train_stylizer.train_and_evaluate(
          tiny_config(shared_data, vgg_partial_path, d_steps=0, adv_weight=0.0, sample_every=0,
                      eval_every=0), str(workdir))
      done.write_text("")
  return str(workdir)
