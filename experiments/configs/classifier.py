"""The oracle classifier experiment's settings: one frozen dataclass.

``experiments/train_classifier.py`` derives its flags from ``Config`` and
writes ``config.json`` from it. ``Config`` extends the library's training
settings ``jaxstyle.train.classifier.TrainConfig`` (epochs, batch size,
optimiser; the architecture is its nested, flagless ``model``) with the data
and output settings of a run. ``get_config("quick")`` is a tiny run on a
slice of MNIST (tests); ``get_config("full")`` is the committed oracle's recipe
(with ``--seed=0``; the committed file predates the shared batch order, see
BUILD_NOTES.md).
"""

from __future__ import annotations

import dataclasses

from jaxstyle import config as cfglib
from jaxstyle.train.classifier import TrainConfig


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
  """Every setting of an oracle training run (no resume: a rerun starts over)."""
  seed: int = cfglib.setting(0, cfglib.SEED_HELP)
  mnist_dir: str | None = cfglib.setting(None, cfglib.MNIST_DIR_HELP)
  num_train: int = cfglib.setting(
      0, "Use only the first N training images (0 = all 60,000). For quick tests.", ge=0)
  num_test: int = cfglib.setting(0, "Evaluate on only the first N test images (0 = all 10,000).",
                                 ge=0)
  floor_sizes: tuple[int, ...] = cfglib.setting(
      (1000, 2000, 5000, 10000), "After training, record FID floors: for each N, the FID of N "
      "random training images vs the whole test set (plus all train vs all test), in the saved "
      "meta and metrics.jsonl. Empty to skip.", ge=2)
  output: str | None = cfglib.setting(
      None, "Where to write the oracle .npz. Default: WORKDIR/oracle.npz.")
  progress: bool = cfglib.setting(True, "Show a progress bar.")


VARIANTS = {
    "quick": dict(num_train=1024, num_test=500, epochs=2, batch_size=128, floor_sizes=(200,),
                  progress=False),
    "full": {},
}


def get_config(variant: str = "full") -> Config:
  """The recipe ``variant`` ("quick" or "full"), validated."""
  if variant not in VARIANTS:
    raise cfglib.invalid("variant", variant, f"must be one of {', '.join(VARIANTS)}")
  return cfglib.validate(Config(**VARIANTS[variant]))
