"""The stylization network experiment's settings: one frozen dataclass, the source of every flag.

``experiments/train_stylizer.py`` derives its flags from ``Config``, writes
``config.json`` from it (the experiment's settings under ``"config"``, the
library's ``StylizerTrainConfig`` under ``"model"``, the bank's style names
under ``"styles"``) and refuses to resume a run directory whose
``resume=True`` settings differ.

``Config`` is flat: the loss settings are ``StylizerLoss``'s fields, the
devices/checkpoint/log settings ``common.RunSettings``'s, and the
architectures' settings are copies (``cfglib.like``: same help and checks) of
``StylizerConfig``, ``StyleEncoderConfig`` and ``PatchGANConfig`` fields,
prefixed ``encoder_`` and ``d_`` for the encoder and the discriminator.
``model_config(config)`` builds the nested ``StylizerTrainConfig``;
``optimizers(config)`` the (generator side, D) optimizers.

Paths are relative to the working directory (the shipped recipes assume the
repository root, with ``../shared`` beside it). ``get_config(variant)``
returns the shipped recipes (``"quick"``, ``"full"``, ``"gpu"``), the same
settings as ``stylizer_<variant>.flags`` (a test checks they agree).
"""

from __future__ import annotations

import dataclasses

import optax
from configs import common

from jaxstyle import config as cfglib
from jaxstyle import train
from jaxstyle.nets import patchgan
from jaxstyle.nets import style_encoder as se
from jaxstyle.nets import stylizer as st
from jaxstyle.train.stylizer import StylizerLoss, StylizerTrainConfig

SHARED = "../shared/data"
CLASSIC_STYLES = (f"{SHARED}/styles/hokusai_great_wave.jpg", f"{SHARED}/styles/picabia_udnie.jpg",
                  f"{SHARED}/styles/vangogh_starry_night.jpg", f"{SHARED}/styles/munch_the_scream.jpg")


def _nonempty(paths: tuple[str, ...]) -> str | None:
  return None if paths else "needs at least one style source"


@dataclasses.dataclass(frozen=True)
class Config(StylizerLoss, common.RunSettings):
  """Every setting of a stylizer run (``resume=True``: must match to resume a run directory)."""
  # Data.
  content_dir: str = cfglib.setting(
      f"{SHARED}/photos/bsds500/train", "Folder of content photos for training (random crops).")
  eval_dir: str | None = cfglib.setting(
      f"{SHARED}/photos/bsds500/val", "Folder of held-out photos: the sample grid's rows and the "
      "evaluation's content images; empty: none.")
  styles: tuple[str, ...] = cfglib.setting(
      CLASSIC_STYLES, "Training styles of the bank, in bank order: image files, folders or CSVs "
      "with a 'file' column, comma-separated. Bank styles are named by their file stem.",
      check=_nonempty, resume=True)
  encoder_styles: tuple[str, ...] = cfglib.setting(
      (), "Extra styles that only the style encoder sees in training (files, folders or CSVs, e.g. "
      f"{SHARED}/paintings/paintings.csv): the encoder examples draw among the bank styles and "
      "these (--encoder_bank_share); empty: the bank styles only. Needs --latent_source encoder "
      "or both.",
      resume=True)
  encoder_bank_share: float = cfglib.setting(
      0.5, "With --encoder_styles: the share of encoder examples that draw a bank style (the rest "
      "draw uniformly among the encoder styles); without it hundreds of paintings crowd the bank "
      "styles out of the encoder's training.", ge=0, le=1, resume=True)
  encoder_holdout: int = cfglib.setting(
      10, "The first this many --encoder_styles (bank styles skipped) are held out of training: "
      "the unseen styles of the evaluation (eval_style_unseen) and of benchmark.py "
      "stylizer_quality.", ge=0, resume=True)
  init_from: str = cfglib.setting(
      "", "Run directory of a trained stylizer that starts this run: its generator (same "
      "architecture), its bank (same styles) and its encoder (same architecture) replace the fresh "
      "ones. With --freeze=g,bank --latent_source=encoder: the encoder's second phase.",
      resume=True)
  crop_size: int = cfglib.setting(128, "Side of the square training crops of the photos.", ge=16,
                                  resume=True)
  style_size: int = cfglib.setting(
      256, "Style images are resized (shorter side) and centre-cropped to this square; their "
      "Grams are the style targets, their random crops the encoder's input and the D's real "
      "patches (>= --crop_size).", ge=16, resume=True)
  batch_size: int = cfglib.setting(
      4, "Global batch size (all devices and processes); must be divisible by the device count.",
      gt=0, resume=True)
  seed: int = cfglib.setting(0, cfglib.SEED_HELP, resume=True)
  vgg_weights: str | None = cfglib.setting(None, cfglib.VGG_WEIGHTS_HELP)
  # Architecture (the generator's fields keep their names; the encoder's and D's are prefixed).
  latent_dim: int = cfglib.like(st.StylizerConfig, "latent_dim")
  widths: tuple[int, ...] = cfglib.like(st.StylizerConfig, "widths")
  stem_kernel: int = cfglib.like(st.StylizerConfig, "stem_kernel")
  residual_blocks: int = cfglib.like(st.StylizerConfig, "residual_blocks")
  upsample: str = cfglib.like(st.StylizerConfig, "upsample")
  output: str = cfglib.like(st.StylizerConfig, "output")
  dtype: str = cfglib.like(st.StylizerConfig, "dtype")
  encoder_taps: tuple[str, ...] = cfglib.like(se.StyleEncoderConfig, "taps")
  encoder_hidden: tuple[int, ...] = cfglib.like(se.StyleEncoderConfig, "hidden")
  encoder_standardize: bool = cfglib.like(se.StyleEncoderConfig, "standardize")
  d_widths: tuple[int, ...] = cfglib.like(patchgan.PatchGANConfig, "widths")
  d_feature_dim: int = cfglib.like(patchgan.PatchGANConfig, "feature_dim")
  d_norm: str = cfglib.like(patchgan.PatchGANConfig, "norm")
  d_spectral_norm: bool = cfglib.like(patchgan.PatchGANConfig, "spectral_norm")
  # Optimisation.
  learning_rate: float = cfglib.setting(1e-3, "Adam learning rate of the generator, bank and "
                                        "encoder.", gt=0, resume=True)
  d_learning_rate: float = cfglib.setting(2e-4, "Adam learning rate of the discriminator.", gt=0,
                                          resume=True)
  adam_b1: float = cfglib.setting(0.9, "Adam beta1 of the generator side (the D uses 0.5).", ge=0,
                                  lt=1, resume=True)
  lr_decay_begin: int = cfglib.setting(
      0, "With --lr_decay_end: step at which the learning rates start to decay linearly.", ge=0,
      resume=True)
  lr_decay_end: int = cfglib.setting(
      0, "Step at which the linearly decaying learning rates reach 0 (0: constant).", ge=0,
      resume=True)
  num_steps: int = cfglib.setting(1000, "Total train steps (a rerun continues up to this step).",
                                  gt=0)
  # Samples, evaluation (devices, checkpoints and logs: common.RunSettings).
  checkpoint_every: int = cfglib.setting(
      200, "Save a checkpoint every this many steps (and at the end); 0: only at the end.", ge=0)
  log_every: int = cfglib.setting(10, "Log losses to metrics.jsonl every this many steps.", ge=0)
  sample_every: int = cfglib.setting(
      200, "Write samples/step_XXXXX.png every this many steps and at the end (rows: held-out "
      "photos; columns: the photo, then each bank style); 0: never.", ge=0)
  eval_every: int = cfglib.setting(
      200, "Evaluate content and style losses on the held-out photos for every bank style (bank "
      "and encoder latents) every this many steps and at the end; 0: never.", ge=0)
  eval_photos: int = cfglib.setting(4, "Held-out photos in the sample grid and the evaluation "
                                    "(the first ones of --eval_dir).", gt=0)
  eval_size: int = cfglib.setting(256, "Side of the held-out photos' centre crops (after resizing "
                                  "the shorter side to it).", ge=16)

  def check(self):
    super().check()
    if self.encoder_styles and self.latent_source == "bank":
      raise cfglib.invalid("encoder_styles", ",".join(self.encoder_styles),
                           "needs --latent_source encoder or both (the bank has no latent for them)")
    if self.style_size < self.crop_size:
      raise cfglib.invalid("style_size", self.style_size, f"must be >= --crop_size={self.crop_size}")
    if self.lr_decay_begin and not self.lr_decay_end:
      raise cfglib.invalid("lr_decay_begin", self.lr_decay_begin, "needs a positive --lr_decay_end")
    if self.lr_decay_end and not self.lr_decay_begin < self.lr_decay_end:
      raise cfglib.invalid("lr_decay_begin", self.lr_decay_begin,
                           f"must be in 0..--lr_decay_end-1 (--lr_decay_end={self.lr_decay_end})")


def model_config(config: Config) -> StylizerTrainConfig:
  """The library's nested training config of ``config`` (validated)."""
  loss = {f.name: getattr(config, f.name) for f in dataclasses.fields(StylizerLoss)}
  d = config.latent_dim
  return cfglib.validate(StylizerTrainConfig(
      **loss,
      generator=st.StylizerConfig(latent_dim=d, widths=config.widths, stem_kernel=config.stem_kernel,
                                  residual_blocks=config.residual_blocks, upsample=config.upsample,
                                  output=config.output, dtype=config.dtype),
      encoder=se.StyleEncoderConfig(latent_dim=d, taps=config.encoder_taps,
                                    hidden=config.encoder_hidden, vgg_dtype=config.vgg_dtype,
                                    standardize=config.encoder_standardize),
      discriminator=patchgan.PatchGANConfig(latent_dim=d, widths=config.d_widths,
                                            feature_dim=config.d_feature_dim, norm=config.d_norm,
                                            spectral_norm=config.d_spectral_norm)))


def optimizers(config: Config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """(generator side, D) Adam optimizers: learning rates with their linear decay; D beta1 0.5."""
  decay = (config.lr_decay_begin, config.lr_decay_end)
  return (train.adam(train.linear_decay(config.learning_rate, *decay), b1=config.adam_b1),
          train.adam(train.linear_decay(config.d_learning_rate, *decay), b1=0.5))


# The shipped recipes (BUILD_NOTES.md, "Stylization network", has the measurements behind them).
_QUICK = dict(encoder_styles=(f"{SHARED}/paintings/paintings.csv",), encoder_standardize=True,
              crop_size=96,
              widths=(16, 32, 64), tv_weight=1e5, identity_weight=1e6, identity_examples=2,
              d_steps=0, lr_decay_begin=700, lr_decay_end=1100, num_steps=1100)
_FULL = dict(_QUICK, styles=(f"{SHARED}/styles",), crop_size=128, lr_decay_begin=4000,
             lr_decay_end=6000, num_steps=6000, checkpoint_every=500, sample_every=500,
             eval_every=500)
_GPU = dict(_FULL, widths=(32, 64, 128), crop_size=256, style_size=512, batch_size=16,
            identity_examples=4, lr_decay_begin=14000, lr_decay_end=20000, num_steps=20000,
            checkpoint_every=1000, sample_every=1000, eval_every=1000)
VARIANTS = {"quick": _QUICK, "full": _FULL, "gpu": _GPU}


def get_config(variant: str = "quick") -> Config:
  """The recipe ``variant`` (``VARIANTS``), validated."""
  if variant not in VARIANTS:
    raise cfglib.invalid("variant", variant, f"must be one of {', '.join(VARIANTS)}")
  return cfglib.validate(Config(**VARIANTS[variant]))
