"""An independent PyTorch implementation of the jaxstyle MNIST cGAN and its train step.

The same architecture as ``jaxstyle.nets.cgan`` (written from its description,
not from its code):

* Generator: label embedding (``embed_dim``) concatenated with z (``z_dim``),
  dense to 7×7×2w, GroupNorm(1)-ReLU, 3×3 conv to 4w + pixel shuffle (14×14×w),
  GroupNorm(1)-ReLU, 3×3 conv + pixel shuffle to 28×28×max(head, 1); with
  ``g_head_width`` > 0 a GroupNorm(1)-ReLU-3×3 conv head makes the image;
  sigmoid. ``g_norm="none"`` drops the GroupNorms.
* Discriminator (projection): 4×4/2 convs to 14×14×dw and 7×7×2dw with
  LeakyReLU(0.2) on ``2x − 1``, dense to ``d_feature_dim`` features φ,
  logit = linear(φ) + ⟨embed(y), φ⟩.

``CGANStep`` is one alternating update: D on real + detached fake, then G
against the updated D (the generator runs forward once), with Adam on both and
the GAN loss ``nonsaturating``, ``hinge`` or ``lsgan`` (as
``jaxstyle.losses.gan_d_loss``/``gan_g_loss``). Images in: float32 [B, 28, 28, 1]
NHWC NumPy in [0, 1]; labels int [B]. Imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

LOSSES = ("nonsaturating", "hinge", "lsgan")


class Generator(nn.Module):
  """(z [B, z_dim], y [B]) -> images [B, 1, 28, 28] in (0, 1)."""

  def __init__(self, *, z_dim: int, embed_dim: int, g_width: int, g_head_width: int = 0,
               g_norm: str = "layer", num_classes: int = 10):
    super().__init__()
    w, hw = g_width, g_head_width
    self.width, self.head_width = w, hw
    self.embed = nn.Embedding(num_classes, embed_dim)
    self.fc = nn.Linear(z_dim + embed_dim, 7 * 7 * 2 * w)
    self.up1 = nn.Conv2d(2 * w, 4 * w, 3, padding=1)
    self.up2 = nn.Conv2d(w, 4 * max(hw, 1), 3, padding=1)
    self.shuffle = nn.PixelShuffle(2)
    norm = (lambda c: nn.GroupNorm(1, c)) if g_norm == "layer" else (lambda c: nn.Identity())
    self.norm0, self.norm1 = norm(2 * w), norm(w)
    if hw:
      self.norm2 = norm(hw)
      self.head = nn.Conv2d(hw, 1, 3, padding=1)

  def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    h = self.fc(torch.cat([z, self.embed(y)], 1)).view(-1, 2 * self.width, 7, 7)
    h = torch.relu(self.norm0(h))
    h = torch.relu(self.norm1(self.shuffle(self.up1(h))))
    h = self.shuffle(self.up2(h))
    if self.head_width:
      h = self.head(torch.relu(self.norm2(h)))
    return torch.sigmoid(h)


class Discriminator(nn.Module):
  """(images [B, 1, 28, 28] in [0, 1], y [B]) -> logits [B]."""

  def __init__(self, *, d_width: int, d_feature_dim: int, num_classes: int = 10):
    super().__init__()
    dw, f = d_width, d_feature_dim
    self.conv1 = nn.Conv2d(1, dw, 4, stride=2, padding=1)
    self.conv2 = nn.Conv2d(dw, 2 * dw, 4, stride=2, padding=1)
    self.fc = nn.Linear(7 * 7 * 2 * dw, f)
    self.out = nn.Linear(f, 1)
    self.embed = nn.Embedding(num_classes, f)

  def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    h = F.leaky_relu(self.conv1(x * 2 - 1), 0.2)
    h = F.leaky_relu(self.conv2(h), 0.2)
    phi = F.leaky_relu(self.fc(h.flatten(1)), 0.2)
    return self.out(phi)[:, 0] + (self.embed(y) * phi).sum(1)


def make_models(config: Any) -> tuple[Generator, Discriminator]:
  """The twin networks of ``config`` (any object with jaxstyle.nets.cgan.CGANConfig's fields)."""
  num_classes = getattr(config, "num_classes", 10)
  gen = Generator(z_dim=config.z_dim, embed_dim=config.embed_dim, g_width=config.g_width,
                  g_head_width=config.g_head_width, g_norm=config.g_norm, num_classes=num_classes)
  disc = Discriminator(d_width=config.d_width, d_feature_dim=config.d_feature_dim,
                       num_classes=num_classes)
  return gen, disc


def num_params(*modules: nn.Module) -> int:
  return sum(p.numel() for m in modules for p in m.parameters())


def d_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
  if kind == "hinge":
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
  if kind == "lsgan":
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()
  return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
  if kind == "hinge":
    return -fake.mean()
  if kind == "lsgan":
    return 0.5 * ((fake - 1) ** 2).mean()
  return F.softplus(-fake).mean()


class CGANStep:
  """One alternating cGAN update on a fixed batch; ``step()`` returns the D loss (a tensor).

  Args:
    gen, disc: the twin networks (``make_models``).
    images: float32 [B, 28, 28, 1] NHWC in [0, 1]; labels: int [B].
    z_dim: noise size (fresh z ~ N(0, 1) every step, from torch's global RNG).
    loss: one of ``LOSSES``.
    g_lr, d_lr, b1, b2: Adam settings of G and D.
    channels_last: keep images and conv weights channels_last in memory.
  """

  def __init__(self, gen: Generator, disc: Discriminator, images: np.ndarray, labels: np.ndarray,
               *, z_dim: int, loss: str = "nonsaturating", g_lr: float = 2e-4, d_lr: float = 2e-4,
               b1: float = 0.5, b2: float = 0.999, channels_last: bool = False):
    if loss not in LOSSES:
      raise ValueError(f"unknown GAN loss {loss!r}; choose one of {LOSSES}")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    self.gen, self.disc = gen.to(memory_format=fmt), disc.to(memory_format=fmt)
    self.loss, self.z_dim = loss, z_dim
    self.opt_g = torch.optim.Adam(gen.parameters(), lr=g_lr, betas=(b1, b2))
    self.opt_d = torch.optim.Adam(disc.parameters(), lr=d_lr, betas=(b1, b2))
    self.x = torch.from_numpy(np.asarray(images, np.float32)).permute(0, 3, 1, 2).contiguous(
        memory_format=fmt)
    self.y = torch.from_numpy(np.asarray(labels)).long()
    self.yy = torch.cat([self.y, self.y])

  def step(self) -> torch.Tensor:
    b = self.y.shape[0]
    z = torch.randn(b, self.z_dim)
    fake = self.gen(z, self.y)
    for p in self.disc.parameters():
      p.requires_grad_(True)
    logits = self.disc(torch.cat([self.x, fake.detach()]), self.yy)
    loss_d = d_loss(logits[:b], logits[b:], self.loss)
    self.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    self.opt_d.step()
    for p in self.disc.parameters():  # G step: no D weight gradients (JAX computes none either)
      p.requires_grad_(False)
    loss_g = g_loss(self.disc(fake, self.y), self.loss)
    self.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    self.opt_g.step()
    return loss_d
