"""Fuzz: the oracle ``.npz`` (``load_oracle``) loads or raises ``OracleError`` naming the file.

Seeds: a tiny LeNet written by ``save_oracle`` (fast to check), and a few
cases on the committed ``jaxstyle/assets/mnist_oracle.npz``. Mutations are
byte-, zip-member-, array- and ``__meta__`` JSON-level (tests/fuzz_testlib.py);
object arrays are refused, never unpickled.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fuzz_testlib as fz
from jaxstyle.errors import OracleError
from jaxstyle.nets import classifier

SEED = 13
ALLOWED = (OracleError,)


@pytest.fixture(scope="module")
def tiny_oracle(tmp_path_factory):
  config = classifier.ClassifierConfig(conv_features=(2, 3), hidden=4)
  shapes = jax.eval_shape(classifier.LeNet(config).init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.float32))
  rng = np.random.default_rng(0)  # random values without running (compiling) the initialisers
  params = jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(s.dtype), shapes)
  path = str(tmp_path_factory.mktemp("oracle") / "tiny.npz")
  classifier.save_oracle(path, params, config, {"test_accuracy": 0.5, "seed": 0})
  assert classifier.load_oracle(path).config == config  # the seed itself is valid
  return open(path, "rb").read()


def test_fuzz_load_oracle(tmp_path, tiny_oracle):
  fz.fuzz("classifier.load_oracle", 200, SEED, str(tmp_path), ".npz",
          fz.npz_mutators(tiny_oracle, json_key=classifier.META_KEY), classifier.load_oracle,
          ALLOWED)


def test_fuzz_committed_oracle(tmp_path):
  data = open(classifier.default_oracle_path(), "rb").read()
  fz.fuzz("classifier.load_oracle[committed]", 24, SEED, str(tmp_path), ".npz",
          [lambda rng: fz.mutate_bytes(data, rng), lambda rng: fz.mutate_zip(data, rng)],
          classifier.load_oracle, ALLOWED)


def test_oracle_pickles_never_run(tmp_path, tiny_oracle):
  marker = str(tmp_path / "PWNED")
  files = fz.evil_npz_files(str(tmp_path), tiny_oracle, marker)
  failures = fz.refusals(files, {"load_oracle": classifier.load_oracle}, ALLOWED, marker)
  assert not failures, "\n".join(failures)
