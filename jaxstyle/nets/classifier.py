"""LeNet-style MNIST classifier: the oracle behind the cGAN metrics.

The oracle maps float32 images in [0, 1], NHWC ``[N, 28, 28, 1]`` (an RGB
``[N, 28, 28, 3]`` input is averaged to grey first) to

* ``logits``   float32 ``[N, num_classes]``
* ``features`` float32 ``[N, hidden]``: the post-ReLU penultimate activations,
  the feature space of the oracle FID, diversity and the like
  (see ``jaxstyle.metrics``).

Architecture (``ClassifierConfig`` defaults): normalise ``(x - 0.5) / 0.5``,
conv 5x5 (32, VALID) - ReLU - max-pool 2, conv 5x5 (64, VALID) - ReLU -
max-pool 2, dense 128 - ReLU (= features), dense 10 (= logits). Max-pooling
is ``jaxstyle.nets.layers.max_pool_2x2`` (reshape + max, deterministic gradient).

A trained oracle is committed as ``jaxstyle/assets/mnist_oracle.npz`` (written
by ``experiments/train_classifier.py``, which trains with
``jaxstyle.train.classifier.train_classifier``); ``load_oracle()`` loads it. The file
format is a plain ``.npz`` (loadable with ``allow_pickle=False``): one array
per parameter, named ``params/<module>/<param>``, plus ``__meta__``, a 0-d
unicode array holding JSON (architecture config, test accuracy, seed, command,
library versions).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import config as cfglib
from jaxstyle.errors import OracleError
from jaxstyle.fileio import atomic_open
from jaxstyle.nets.layers import max_pool_2x2

META_KEY = "__meta__"
DEFAULT_ORACLE = "mnist_oracle.npz"  # inside the jaxstyle/assets package-data folder


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
  """Architecture of ``LeNet`` (stored with every saved oracle)."""
  num_classes: int = cfglib.setting(10, "Number of classes (logits).", gt=0)
  conv_features: tuple[int, ...] = cfglib.setting(
      (32, 64), "Channels of each conv layer (each followed by ReLU and a 2x2 max-pool).", gt=0)
  kernel_size: int = cfglib.setting(5, "Conv kernel height and width (VALID padding).", gt=0)
  hidden: int = cfglib.setting(128, "Width of the penultimate dense layer (the feature size).", gt=0)


class LeNet(nn.Module):
  """LeNet-style classifier returning ``(logits, features)``; see module docstring."""
  config: ClassifierConfig = ClassifierConfig()

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """images: float32 [N, H, W, 1 or 3] in [0, 1] -> (logits [N, C], features [N, hidden])."""
    cfg = self.config
    x = jnp.asarray(images, jnp.float32)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
      raise ValueError(f"LeNet expects NHWC images with 1 or 3 channels, got shape {x.shape}")
    if x.shape[-1] == 3:
      x = x.mean(axis=-1, keepdims=True)
    x = (x - 0.5) / 0.5
    for i, f in enumerate(cfg.conv_features):
      x = nn.Conv(f, (cfg.kernel_size, cfg.kernel_size), padding="VALID", name=f"conv{i + 1}")(x)
      x = max_pool_2x2(nn.relu(x))
    x = x.reshape(x.shape[0], -1)
    features = nn.relu(nn.Dense(cfg.hidden, name="fc1")(x))
    logits = nn.Dense(cfg.num_classes, name="logits")(features)
    return logits, features


# ----------------------------------------------------------------------------
# The oracle: a trained LeNet plus batched, padded (no-recompile) evaluation.


class Oracle:
  """A trained classifier: ``oracle(images) -> (logits, features)`` as NumPy.

  Attributes:
    config: the architecture.
    params: the Flax params pytree (``{"params": ...}``).
    meta: free-form JSON metadata (test accuracy, seed, command, ...).
    batch_size: images per compiled call; inputs are processed in chunks of
      this size, the last one padded, so any N compiles once.
  """

  def __init__(self, params: Any, config: ClassifierConfig = ClassifierConfig(),
               meta: Mapping[str, Any] | None = None, batch_size: int = 1000):
    self.config = config
    self.params = params
    self.meta = dict(meta or {})
    self.batch_size = int(batch_size)
    self.model = LeNet(config)
    self._apply = jax.jit(self.model.apply)

  @property
  def num_classes(self) -> int:
    return self.config.num_classes

  @property
  def feature_dim(self) -> int:
    return self.config.hidden

  def __call__(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
    """images float32 [N, 28, 28, 1|3] in [0, 1] -> (logits f32 [N, C], features f32 [N, D])."""
    images = np.asarray(images, np.float32)
    n = images.shape[0]
    if n == 0:
      return (np.zeros((0, self.num_classes), np.float32), np.zeros((0, self.feature_dim), np.float32))
    logits, feats = [], []
    for start in range(0, n, self.batch_size):
      chunk = images[start:start + self.batch_size]
      m = chunk.shape[0]
      if m < self.batch_size:  # pad: every call reuses one compiled shape
        chunk = np.concatenate([chunk, np.zeros((self.batch_size - m,) + chunk.shape[1:], np.float32)])
      lg, ft = self._apply(self.params, chunk)
      logits.append(np.asarray(lg)[:m])
      feats.append(np.asarray(ft)[:m])
    return np.concatenate(logits), np.concatenate(feats)

  def logits(self, images: Any) -> np.ndarray:
    return self(images)[0]

  def features(self, images: Any) -> np.ndarray:
    return self(images)[1]

  def probs(self, images: Any) -> np.ndarray:
    """Softmax probabilities float32 [N, C]."""
    return np.asarray(jax.nn.softmax(self.logits(images), axis=-1))

  def predict(self, images: Any) -> np.ndarray:
    """Predicted class int32 [N]."""
    return self.logits(images).argmax(axis=-1).astype(np.int32)

  def accuracy(self, images: Any, labels: Any) -> float:
    return float(np.mean(self.predict(images) == np.asarray(labels)))


# ----------------------------------------------------------------------------
# Save / load (plain npz, no pickle).


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
  out = {}
  for k, v in tree.items():
    key = f"{prefix}/{k}" if prefix else str(k)
    if isinstance(v, Mapping):
      out.update(_flatten(v, key))
    else:
      out[key] = np.asarray(v)
  return out


def _unflatten(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
  tree: dict[str, Any] = {}
  for key, value in flat.items():
    node = tree
    *parents, leaf = key.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = jnp.asarray(value)
  return tree


def save_oracle(path: str, params: Any, config: ClassifierConfig,
                meta: Mapping[str, Any] | None = None) -> None:
  """Writes ``params`` (+ config and ``meta`` as JSON) to a pickle-free ``.npz``."""
  flat = _flatten(jax.device_get(params))
  record = {"config": cfglib.to_dict(config), **dict(meta or {})}
  flat[META_KEY] = np.array(json.dumps(record, sort_keys=True))
  with atomic_open(path, "wb") as f:
    np.savez(f, **flat)


def default_oracle_path() -> str:
  """Path of the committed oracle, ``jaxstyle/assets/mnist_oracle.npz``."""
  return str(importlib.resources.files("jaxstyle").joinpath("assets", DEFAULT_ORACLE))


def load_oracle(path: str | None = None, batch_size: int = 1000) -> Oracle:
  """Loads an oracle saved by ``save_oracle`` (default: the committed MNIST oracle).

  Raises:
    OracleError: the file is missing, unreadable, or its arrays do not match
      the architecture recorded in it.
  """
  path = path or default_oracle_path()
  if not os.path.exists(path):
    raise OracleError(f"oracle checkpoint {path!r} not found; train one with "
                      "`python experiments/train_classifier.py --mnist_dir=... --workdir=DIR` "
                      "and pass DIR/oracle.npz")
  advice = "train one with `python experiments/train_classifier.py` or restore the file"
  try:
    with np.load(path, allow_pickle=False) as z:
      flat = {k: z[k] for k in z.files}
  except Exception as e:  # noqa: BLE001 - zip/npz errors (BadZipFile, EOFError, ...): corrupt
    raise OracleError(f"{path}: not a readable oracle .npz ({type(e).__name__}: {e}); "
                      f"{advice}") from None
  if META_KEY not in flat:
    raise OracleError(f"{path}: no {META_KEY} entry; not written by jaxstyle save_oracle")
  bad = [k for k, a in flat.items() if k != META_KEY and not (
      isinstance(a, np.ndarray) and a.dtype.kind == "f")]  # np.load: a non-.npy member is bytes
  if bad:
    raise OracleError(f"{path}: {bad[0]} is not a float array; {advice}")
  try:
    meta = json.loads(str(flat.pop(META_KEY)))
    config = cfglib.validate(cfglib.from_dict(ClassifierConfig, meta.pop("config")))
    expected = jax.eval_shape(LeNet(config).init, jax.random.key(0),
                              jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.float32))
  except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError,
          RecursionError) as e:
    raise OracleError(f"{path}: malformed {META_KEY} ({type(e).__name__}: {e}); {advice}") from None
  try:
    params = _unflatten(flat)
  except (AttributeError, TypeError) as e:  # e.g. "params/fc1" both a leaf and a folder
    raise OracleError(f"{path}: its parameter names clash ({type(e).__name__}: {e}); "
                      f"{advice}") from None
  got = jax.tree.map(lambda a: (a.shape, a.dtype), params)
  want = jax.tree.map(lambda a: (a.shape, a.dtype), expected)
  if got != want:
    raise OracleError(f"{path}: parameter arrays do not match the recorded architecture {config}")
  return Oracle(params, config, meta, batch_size=batch_size)
