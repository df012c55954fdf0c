"""The cGAN experiment's settings: one frozen dataclass, the one source of every setting.

``experiments/train_cgan.py`` derives its flags from ``Config``
(``cli.define_config_flags``), writes ``config.json`` from it
(``cfglib.to_dict``) and checks a resumed run directory with it
(``cfglib.resume_mismatch``: the ``resume=True`` settings must match).
``experiments/benchmarks`` derives the cGAN benchmark's flags from the same
fields. Field names are the flag names.

``Config`` extends the architecture ``jaxstyle.nets.cgan.CGANConfig`` (whose
fields are flags too); ``model_config(config)`` is the architecture part and
``optimizers(config)`` the (G, D) optimizers.

``get_config(variant)`` returns the shipped recipes: ``"quick"`` and
``"full"``, the same settings as ``cgan_mnist_quick.flags`` and
``cgan_mnist.flags`` (a test checks they agree).
"""

from __future__ import annotations

import dataclasses

import optax
from configs import common

from jaxstyle import config as cfglib
from jaxstyle import losses, train
from jaxstyle.nets import cgan


@dataclasses.dataclass(frozen=True)
class Config(cgan.CGANConfig, common.RunSettings):
  """Every setting of a cGAN run (``resume=True``: must match to resume a run directory)."""
  # Data.
  dataset: str = cfglib.setting("mnist", "Dataset; only 'mnist' is supported.", choices=("mnist",),
                                resume=True)
  mnist_dir: str | None = cfglib.setting(None, cfglib.MNIST_DIR_HELP)
  seed: int = cfglib.setting(0, cfglib.SEED_HELP, resume=True)
  batch_size: int = cfglib.setting(
      64, "Global batch size (all devices and processes); must be divisible by the device count.",
      gt=0, resume=True)
  # Optimisation.
  loss: str = cfglib.setting("nonsaturating", "GAN loss.", choices=losses.GAN_LOSSES, resume=True)
  learning_rate: float = cfglib.setting(2e-4, "Adam learning rate of G and D.", gt=0, resume=True)
  d_learning_rate: float | None = cfglib.setting(
      None, "Adam learning rate of D, if different from G's (two time-scale updates); default: "
      "--learning_rate.", gt=0, resume=True)
  lr_decay_begin: int = cfglib.setting(
      0, "With --lr_decay_end: step at which both learning rates start to decay linearly.", ge=0,
      resume=True)
  lr_decay_end: int = cfglib.setting(
      0, "Step at which the linearly decaying learning rates reach 0 (0: constant learning rates). "
      "E.g. --lr_decay_begin=6000 --lr_decay_end=12000.", ge=0, resume=True)
  adam_b1: float = cfglib.setting(0.5, "Adam beta1 of G and D.", ge=0, lt=1, resume=True)
  ema_decay: float = cfglib.setting(
      0.999, "Decay of the moving average of the generator's weights used for samples and "
      "evaluation; 0: no average (use the raw generator).", ge=0, lt=1, resume=True)
  num_steps: int = cfglib.setting(5000, "Total train steps (a rerun continues up to this step).",
                                  gt=0)
  # Samples, evaluation (devices, checkpoints and logs: common.RunSettings).
  eval_every: int = cfglib.setting(
      1000, "Evaluate (oracle accuracy, FID, IS, diversity) every this many steps and at the end; "
      "0: never.", ge=0)
  eval_samples: int = cfglib.setting(
      5000, "Generated images per evaluation (balanced over digits).", gt=0)
  oracle: str | None = cfglib.setting(
      None, "Oracle classifier .npz for evaluation (default: the committed "
      "jaxstyle/assets/mnist_oracle.npz).")
  sample_every: int = cfglib.setting(
      500, "Write samples/step_XXXXX.png every this many steps and at the end; 0: never.", ge=0)

  def check(self):
    """Cross-field rules (the field checks run first)."""
    if self.lr_decay_begin and not self.lr_decay_end:
      raise cfglib.invalid("lr_decay_begin", self.lr_decay_begin, "needs a positive --lr_decay_end")
    if self.lr_decay_end and not self.lr_decay_begin < self.lr_decay_end:
      raise cfglib.invalid("lr_decay_begin", self.lr_decay_begin,
                           f"must be in 0..--lr_decay_end-1 (--lr_decay_end={self.lr_decay_end})")


def model_config(config: Config) -> cgan.CGANConfig:
  """The architecture part of ``config`` (its ``CGANConfig`` fields)."""
  fields = dataclasses.fields(cgan.CGANConfig)
  return cgan.CGANConfig(**{f.name: getattr(config, f.name) for f in fields})


def optimizers(config: Config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """The (G, D) Adam optimizers of ``config``: learning rates, their linear decay, beta1."""
  d_lr = config.learning_rate if config.d_learning_rate is None else config.d_learning_rate
  decay = (config.lr_decay_begin, config.lr_decay_end)
  return (train.adam(train.linear_decay(config.learning_rate, *decay), b1=config.adam_b1),
          train.adam(train.linear_decay(d_lr, *decay), b1=config.adam_b1))


# The shipped recipes: a narrow network (32/64 channels, a 16-channel full-resolution generator
# head), hinge loss, the CPU split into 2 devices. "full" trains the same recipe 2.4x longer.
_QUICK = dict(g_width=32, g_head_width=16, d_width=32, loss="hinge", cpu_devices=2, num_steps=10000,
              checkpoint_every=1000, eval_every=2000, sample_every=2000)
VARIANTS = {"quick": _QUICK, "full": {**_QUICK, "num_steps": 24000}}


def get_config(variant: str = "quick") -> Config:
  """The recipe ``variant`` ("quick" or "full"), validated."""
  if variant not in VARIANTS:
    raise cfglib.invalid("variant", variant, f"must be one of {', '.join(VARIANTS)}")
  return cfglib.validate(Config(**VARIANTS[variant]))
