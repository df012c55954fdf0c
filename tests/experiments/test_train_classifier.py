"""End-to-end tests of experiments/train_classifier.py (subprocesses on the real MNIST files)."""

import json
import os

import pytest
from conftest import run_experiment

from jaxstyle import data as jdata
from jaxstyle import metrics
from jaxstyle.nets import classifier


@pytest.fixture(scope="module")
def mnist_dir(shared_data):
  return os.path.join(shared_data, "mnist")


def test_train_classifier_experiment(tmp_path, mnist_dir):
  workdir = tmp_path / "run"
  run_experiment("train_classifier.py", f"--mnist_dir={mnist_dir}", f"--workdir={workdir}",
                 "--num_train=1024", "--num_test=500", "--epochs=2", "--batch_size=128", "--seed=3",
                 "--floor_sizes=200")
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  epochs = [r for r in rows if "epoch" in r]
  reference = rows[-1]
  assert [r["step"] for r in rows if "loss" in r] == [16]  # every 20 steps and at the end
  assert len(rows) == 4 and "fid_floor_full" in reference
  assert [r["epoch"] for r in epochs] == [1, 2] and [r["step"] for r in epochs] == [8, 16]
  config = json.load(open(workdir / "config.json"))
  assert config["config"]["seed"] == 3 and config["num_train_images"] == 1024
  oracle = classifier.load_oracle(str(workdir / "oracle.npz"))
  assert oracle.meta["seed"] == 3 and oracle.meta["test_accuracy"] == epochs[-1]["test_accuracy"]
  test_u8, test_labels = jdata.load_mnist_idx(mnist_dir, "test")
  test_x, test_labels = jdata.to_float_nhwc(test_u8[:500]), test_labels[:500]
  acc = oracle.accuracy(test_x, test_labels)
  assert acc == pytest.approx(epochs[-1]["test_accuracy"], abs=1e-9)
  assert acc > 0.5  # 16 steps on 1,024 images: far above chance (0.1)
  # The real-data reference row is reproducible from the saved oracle in this process.
  train_u8, _ = jdata.load_mnist_idx(mnist_dir, "train")
  again = metrics.reference_scores(oracle, test_x, test_labels,
                                   jdata.to_float_nhwc(train_u8[:1024]), [200], seed=3)
  assert set(again) == set(reference) - {"step"}
  for k, v in again.items():
    assert reference[k] == pytest.approx(v, rel=1e-4), k
  assert oracle.meta["reference"] == {k: reference[k] for k in again}


@pytest.mark.parametrize("args,message", [
    (["--batch_size=0"], "--batch_size=0"),
    (["--mnist_dir=/nonexistent/mnist"], "/nonexistent/mnist"),
    (["--num_train=500", "--floor_sizes=1000"], "--floor_sizes=1000"),
])


def test_train_classifier_bad_flags(tmp_path, mnist_dir, args, message):
  base = [f"--mnist_dir={mnist_dir}", f"--workdir={tmp_path / 'r'}"]
  proc = run_experiment("train_classifier.py", *base, *args, check=False)
  assert proc.returncode == 2
  lines = [l for l in proc.stderr.strip().splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
