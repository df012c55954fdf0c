"""In-house PyTorch peers of the stylization network: its twin, Johnson et al.'s TransformerNet, a train step.

Written from the architecture descriptions (``jaxstyle.nets.stylizer``'s
module contract; Johnson et al. 2016), not from jaxstyle code. Imports torch.

* ``TorchStylizer(widths, stem_kernel, residual_blocks, latent_dim, upsample,
  output, norm_eps)`` (or ``TorchStylizer.from_settings(dict)``) computes the
  function of ``jaxstyle.nets.stylizer``'s generator in float32:
  ``forward(images, latent)``, ``images`` float32 ``[B, 3, H, W]`` RGB in [0, 1]
  (any memory format), ``latent`` ``[B, D]``, ``[1, D]`` or ``[D]``; returns
  ``[B, 3, H, W]`` in [0, 1], exactly the input size. The input is mapped to
  ``2x - 1``, reflection-padded at the bottom and right to a multiple of
  ``2 ** (len(widths) - 1)``, and the output is cropped back. Every conv
  reflection-pads by ``kernel // 2``; convs followed by a norm have no bias;
  every norm is a parameter-free instance norm (biased variance, ``norm_eps``)
  followed by ``x * (1 + s) + b`` with ``(s, b)`` the two halves of
  ``Linear(latent_dim, 2C)(latent)``. ``load_jax_params(params)`` copies a
  jaxstyle parameter tree (``init_stylizer``'s layout: HWIO conv kernels,
  ``[in, out]`` dense kernels) into the module and raises ``ValueError`` on a missing,
  unused or wrongly shaped entry.
* ``TransformerNet()``: the feed-forward network as the PyTorch examples'
  ``fast_neural_style`` has it (reflection-padded convs with bias,
  ``InstanceNorm2d(affine=True)``, ReLU; 9x9 3->32, 3x3/2 32->64, 3x3/2
  64->128, five residual blocks at 128, two nearest-2x-upsample + 3x3 convs
  128->64->32, a 9x9 conv 32->3 with no activation); 1,679,235 parameters.
  ``forward(x [B, 3, H, W]) -> [B, 3, 4*ceil(H/4), 4*ceil(W/4)]`` (the examples
  feed 0-255 pixels and clamp the output; the scale does not change the cost).
* ``StylizerTrainStep``: one Adam update of a ``TorchStylizer`` and a learned
  style bank, the work of ``jaxstyle.train.stylizer.make_stylizer_step`` with
  ``latent_source="bank"``, ``d_steps=0`` and ``identity_weight > 0``: the VGG
  content features of the batch (no gradient), one generator forward on
  ``[content; content]`` with ``[bank latents; 0]``, the VGG taps of the
  stylized half, and ``g_loss = a*content + b*style + c*tv + i*identity`` in
  that module's units (content ``sum_l w_l mean(0.5 (F_l(X) - F_l(C))^2)``,
  style ``sum_l w_l / (4 C_l^2) ||G_l(X) - G_l(S)||^2`` with position-averaged
  Grams, TV ``sum (dx^2 + dy^2) / (H W)``, identity ``mean((G(C, 0) - C)^2)``),
  batch means; then backward and Adam on the generator and the bank.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from peers import gatys as peer_gatys

UPSAMPLES = ("nearest", "bilinear")
OUTPUTS = ("sigmoid", "tanh")


def _reflect_conv(cin: int, cout: int, kernel: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
  return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, padding_mode="reflect",
                   bias=bias)


class StyleNorm(nn.Module):
  """Parameter-free instance norm, then ``x * (1 + s) + b`` with ``(s, b) = split(affine(w))``."""

  def __init__(self, channels: int, latent_dim: int, eps: float):
    super().__init__()
    self.eps = eps
    self.affine = nn.Linear(latent_dim, 2 * channels)

  def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    scale, shift = self.affine(w).chunk(2, dim=1)
    return F.instance_norm(x, eps=self.eps) * (1.0 + scale[:, :, None, None]) + shift[:, :, None, None]


class StyleResidual(nn.Module):
  """``x + norm2(conv2(relu(norm1(conv1(x)))))``, 3x3 reflection-padded convs without bias."""

  def __init__(self, channels: int, latent_dim: int, eps: float):
    super().__init__()
    self.conv1 = _reflect_conv(channels, channels, 3)
    self.norm1 = StyleNorm(channels, latent_dim, eps)
    self.conv2 = _reflect_conv(channels, channels, 3)
    self.norm2 = StyleNorm(channels, latent_dim, eps)

  def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    h = F.relu(self.norm1(self.conv1(x), w))
    return x + self.norm2(self.conv2(h), w)


class TorchStylizer(nn.Module):
  """The stylization generator with a StyleMod at every norm (see the module docstring)."""

  def __init__(self, widths: Sequence[int] = (32, 64, 128), stem_kernel: int = 9,
               residual_blocks: int = 5, latent_dim: int = 64, upsample: str = "nearest",
               output: str = "sigmoid", norm_eps: float = 1e-5):
    super().__init__()
    if upsample not in UPSAMPLES:
      raise ValueError(f"unknown upsample {upsample!r}; choose one of {UPSAMPLES}")
    if output not in OUTPUTS:
      raise ValueError(f"unknown output {output!r}; choose one of {OUTPUTS}")
    widths = tuple(int(c) for c in widths)
    self.widths, self.latent_dim = widths, latent_dim
    self.upsample, self.output = upsample, output
    self.multiple = 2 ** (len(widths) - 1)
    self.stem = _reflect_conv(3, widths[0], stem_kernel)
    self.stem_norm = StyleNorm(widths[0], latent_dim, norm_eps)
    self.down = nn.ModuleList(_reflect_conv(a, b, 3, stride=2) for a, b in zip(widths, widths[1:]))
    self.down_norms = nn.ModuleList(StyleNorm(b, latent_dim, norm_eps) for b in widths[1:])
    self.res = nn.ModuleList(StyleResidual(widths[-1], latent_dim, norm_eps)
                             for _ in range(residual_blocks))
    back = widths[::-1]
    self.up = nn.ModuleList(_reflect_conv(a, b, 3) for a, b in zip(back, back[1:]))
    self.up_norms = nn.ModuleList(StyleNorm(b, latent_dim, norm_eps) for b in back[1:])
    self.head = _reflect_conv(widths[0], 3, stem_kernel, bias=True)

  @classmethod
  def from_settings(cls, settings: Mapping[str, Any]) -> "TorchStylizer":
    """From a generator settings dict (``jaxstyle.config.to_dict`` of a ``StylizerConfig``).

    Reads ``widths``, ``stem_kernel``, ``residual_blocks``, ``latent_dim``,
    ``upsample``, ``output`` and ``norm_eps``; other keys (``dtype``) are ignored.
    """
    names = ("widths", "stem_kernel", "residual_blocks", "latent_dim", "upsample", "output",
             "norm_eps")
    return cls(**{k: settings[k] for k in names if k in settings})

  def _latent(self, latent: torch.Tensor, batch: int) -> torch.Tensor:
    w = latent.to(torch.float32)
    if w.dim() == 1:
      w = w[None]
    if w.dim() != 2 or w.shape[1] != self.latent_dim or w.shape[0] not in (1, batch):
      raise ValueError(f"latent of shape {tuple(latent.shape)} does not fit a batch of {batch} "
                       f"and latent_dim {self.latent_dim}")
    return w.expand(batch, self.latent_dim)

  def forward(self, images: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    b, _, h, w = images.shape
    z = self._latent(latent, b)
    x = images * 2.0 - 1.0
    pad_h, pad_w = -h % self.multiple, -w % self.multiple
    if pad_h or pad_w:
      x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    x = F.relu(self.stem_norm(self.stem(x), z))
    for conv, norm in zip(self.down, self.down_norms):
      x = F.relu(norm(conv(x), z))
    for block in self.res:
      x = block(x, z)
    for conv, norm in zip(self.up, self.up_norms):
      if self.upsample == "nearest":
        x = F.interpolate(x, scale_factor=2, mode="nearest")
      else:  # half-pixel centres, edges clamped
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
      x = F.relu(norm(conv(x), z))
    x = self.head(x)[:, :, :h, :w]
    if self.output == "tanh":
      return (torch.tanh(x) + 1.0) * 0.5
    return torch.sigmoid(x)

  def _jax_names(self) -> Iterator[tuple[str, nn.Module]]:
    """(jaxstyle path of the layer, torch layer) for every conv and StyleNorm."""
    yield "stem", self.stem
    yield "stem_norm", self.stem_norm
    for i, (conv, norm) in enumerate(zip(self.down, self.down_norms), start=1):
      yield f"down{i}", conv
      yield f"down{i}_norm", norm
    for i, block in enumerate(self.res):
      for part in ("conv1", "norm1", "conv2", "norm2"):
        yield f"res{i}/{part}", getattr(block, part)
    for i, (conv, norm) in enumerate(zip(self.up, self.up_norms), start=1):
      yield f"up{i}", conv
      yield f"up{i}_norm", norm
    yield "head", self.head

  def load_jax_params(self, params: Mapping[str, Any]) -> "TorchStylizer":
    """Copies jaxstyle's generator params (``init_stylizer``'s tree) into this module; returns it."""
    flat = _flatten(params)
    used = set()

    def take(path: str, shape: tuple[int, ...]) -> torch.Tensor:
      if path not in flat:
        raise ValueError(f"jaxstyle params have no {path!r}: another architecture?")
      value = np.asarray(flat[path], np.float32)
      if value.shape != shape:
        raise ValueError(f"jaxstyle param {path!r} has shape {value.shape}, expected {shape}")
      used.add(path)
      return torch.from_numpy(value.copy())

    with torch.no_grad():
      for name, layer in self._jax_names():
        if isinstance(layer, nn.Conv2d):
          o, i, kh, kw = layer.weight.shape
          layer.weight.copy_(take(f"{name}/conv/kernel", (kh, kw, i, o)).permute(3, 2, 0, 1))
          if layer.bias is not None:
            layer.bias.copy_(take(f"{name}/conv/bias", (o,)))
        else:
          out, inp = layer.affine.weight.shape
          layer.affine.weight.copy_(take(f"{name}/mod/affine/kernel", (inp, out)).t())
          layer.affine.bias.copy_(take(f"{name}/mod/affine/bias", (out,)))
    unused = sorted(set(flat) - used)
    if unused:
      raise ValueError(f"jaxstyle params {unused} have no place in this TorchStylizer: another "
                       "architecture?")
    return self


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  out = {}
  for key, value in tree.items():
    path = f"{prefix}{key}"
    if isinstance(value, Mapping):
      out.update(_flatten(value, path + "/"))
    else:
      out[path] = value
  return out


class _ConvIN(nn.Module):
  """Reflection pad + conv (with bias), optionally InstanceNorm2d(affine) + ReLU."""

  def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True,
               relu: bool = True, upsample: bool = False):
    super().__init__()
    self.upsample = upsample
    self.pad = nn.ReflectionPad2d(kernel // 2)
    self.conv = nn.Conv2d(cin, cout, kernel, stride=stride)
    self.norm = nn.InstanceNorm2d(cout, affine=True) if norm else None
    self.relu = relu

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    if self.upsample:
      x = F.interpolate(x, scale_factor=2, mode="nearest")
    x = self.conv(self.pad(x))
    if self.norm is not None:
      x = self.norm(x)
    return F.relu(x) if self.relu else x


class _Residual(nn.Module):
  def __init__(self, channels: int):
    super().__init__()
    self.a = _ConvIN(channels, channels, 3)
    self.b = _ConvIN(channels, channels, 3, relu=False)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return x + self.b(self.a(x))


class TransformerNet(nn.Module):
  """Johnson et al. 2016's feed-forward stylization network (see the module docstring)."""

  def __init__(self):
    super().__init__()
    self.body = nn.Sequential(
        _ConvIN(3, 32, 9), _ConvIN(32, 64, 3, stride=2), _ConvIN(64, 128, 3, stride=2),
        *[_Residual(128) for _ in range(5)],
        _ConvIN(128, 64, 3, upsample=True), _ConvIN(64, 32, 3, upsample=True),
        _ConvIN(32, 3, 9, norm=False, relu=False))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.body(x)


def autocast(device: str, dtype: torch.dtype | None):
  """``torch.autocast(device, dtype)``, or a no-op context for ``dtype`` None (float32)."""
  return torch.autocast(device, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def num_params(module: nn.Module) -> int:
  return sum(p.numel() for p in module.parameters())


class StylizerTrainStep:
  """One Adam step of a ``TorchStylizer`` and its style bank (see the module docstring).

  Args:
    model: the generator (trained in place).
    vgg_params: jaxstyle VGG params (``VGGWeights.params``, HWIO) deep enough for the taps.
    preprocessing: the weights' convention (``"caffe"`` or ``"torch"``).
    content: float32 NHWC ``[B, H, W, 3]`` in [0, 1], the batch every step trains on.
    style_grams: ``{style tap: [N, C, C]}`` position-averaged target Grams of N styles.
    content_layers, style_layers: ``{tap: weight}``.
    weights: ``(content, style, tv, identity)`` weights.
    bank: ``[N, D]`` initial bank latents.
    lr, b1: Adam's learning rate and beta1 (jaxstyle's ``train.adam`` default 0.5).
    channels_last: run generator and VGG channels_last in memory.
    seed: seeds the per-step style draws.
    compile_fn: e.g. ``torch.compile``, applied to the loss function (None: eager).
    device: where the model, VGG, batch, Grams and bank live (``"cpu"``, ``"cuda"``).
    amp_dtype: e.g. ``torch.bfloat16``: the generator runs under ``torch.autocast`` to
      it, VGG and the losses in float32 (None: all float32).
  """

  def __init__(self, model: TorchStylizer, vgg_params: Mapping[str, Mapping[str, np.ndarray]],
               preprocessing: str, content: np.ndarray, style_grams: Mapping[str, np.ndarray],
               content_layers: Mapping[str, float], style_layers: Mapping[str, float],
               weights: tuple[float, float, float, float], bank: np.ndarray, *, lr: float = 1e-3,
               b1: float = 0.5, channels_last: bool = False, seed: int = 0,
               compile_fn: Callable | None = None, device: str = "cpu",
               amp_dtype: torch.dtype | None = None):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    self.device, self.amp_dtype = device, amp_dtype
    self.model = model.to(device).to(memory_format=fmt)
    self.vgg = peer_gatys.TorchVGG(vgg_params, preprocessing, channels_last=channels_last,
                                   device=device)
    self.content_layers, self.style_layers = dict(content_layers), dict(style_layers)
    self.taps = list(dict.fromkeys(list(self.content_layers) + list(self.style_layers)))
    self.weights = weights
    self.content = torch.from_numpy(np.ascontiguousarray(
        np.asarray(content, np.float32).transpose(0, 3, 1, 2))).to(device).contiguous(
            memory_format=fmt)
    self.grams = {k: torch.from_numpy(np.array(v, np.float32)).to(device)
                  for k, v in style_grams.items()}
    self.bank = nn.Parameter(torch.from_numpy(np.asarray(bank, np.float32).copy()).to(device))
    self.opt = torch.optim.Adam([*self.model.parameters(), self.bank], lr=lr, betas=(b1, 0.999))
    self.gen = torch.Generator().manual_seed(seed)
    self._loss = compile_fn(self.loss_parts) if compile_fn else self.loss_parts

  def loss_parts(self, content: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"g_loss", "content", "style", "tv", "identity"}`` (batch means) for styles ``idx`` [B].

    Args:
      content: [B, 3, H, W] in [0, 1].
      idx: int64 [B], each example's style (bank row and target Grams).
    """
    b = content.shape[0]
    with torch.no_grad():
      cfeats = self.vgg(content, list(self.content_layers))
    lat = self.bank[idx]
    with autocast(self.device, self.amp_dtype):
      out = self.model(torch.cat([content, content]), torch.cat([lat, torch.zeros_like(lat)]))
    out = out.float()
    x = out[:b]
    feats = self.vgg(x, self.taps)
    lc = sum(w * 0.5 * ((feats[k] - cfeats[k]) ** 2).mean() for k, w in self.content_layers.items())
    ls = 0.0
    for k, w in self.style_layers.items():
      c = feats[k].shape[1]
      ls = ls + w * ((peer_gatys.gram(feats[k]) - self.grams[k][idx]) ** 2).sum(dim=(1, 2)).mean() / (
          4.0 * c * c)
    dy = x[:, :, 1:, :] - x[:, :, :-1, :]
    dx = x[:, :, :, 1:] - x[:, :, :, :-1]
    tv = ((dy ** 2).sum() + (dx ** 2).sum()) / (b * x.shape[2] * x.shape[3])
    identity = ((out[b:] - content) ** 2).mean()
    a, s, t, i = self.weights
    total = a * lc + s * ls + t * tv + i * identity
    return {"g_loss": total, "content": lc, "style": ls, "tv": tv, "identity": identity}

  def step(self) -> dict[str, float]:
    """One update on the fixed batch with fresh style draws; returns the loss parts (floats)."""
    idx = torch.randint(0, self.bank.shape[0], (self.content.shape[0],), generator=self.gen)
    self.opt.zero_grad(set_to_none=True)
    parts = self._loss(self.content, idx.to(self.device))
    parts["g_loss"].backward()
    self.opt.step()
    return {k: float(v.detach()) for k, v in parts.items()}
