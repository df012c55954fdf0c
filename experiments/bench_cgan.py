"""cGAN train steps/s: jaxstyle vs an in-house PyTorch equivalent, in one run.

  python experiments/benchmark.py cgan [--batch_size 64 --g_width 32 --d_width 32 --steps 30]
  python experiments/bench_cgan.py [same flags]
  python experiments/benchmark.py cgan --g_head_width 16 --loss hinge   # the shipped configs' model

jaxstyle runs in two setups, one device (``--parallel=jit``) and the batch
split over ``--cpu_devices`` CPU devices with shard_map (what train_cgan.py's
``--cpu_devices`` does); PyTorch runs with each of ``--torch_threads``. The
ratio compares the fastest setup of each, so neither side is handicapped by
a threading choice.

Both sides train the same architecture (jaxstyle.nets.cgan: label-embedding
generator with sub-pixel upsampling, optional full-resolution head and
GroupNorm, projection discriminator) with the same alternating update under
``--loss`` (non-saturating by default, or hinge) (D step on real + detached
fake, then G step against the updated D; the generator runs forward once),
Adam(beta1=0.5), on the same random batch. PyTorch runs only if importable.
Prints JSON with steps/s of each and the ratio jax/torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def _parser():
  p = argparse.ArgumentParser(prog="benchmark.py cgan", description=__doc__.splitlines()[0])
  p.add_argument("--batch_size", type=int, default=64)
  p.add_argument("--z_dim", type=int, default=64)
  p.add_argument("--g_width", type=int, default=32)
  p.add_argument("--g_head_width", type=int, default=0, help="as train_cgan.py --g_head_width")
  p.add_argument("--g_norm", default="layer", choices=["layer", "none"], help="as train_cgan.py --g_norm")
  p.add_argument("--loss", default="nonsaturating", choices=["nonsaturating", "hinge"],
                 help="GAN loss (both sides)")
  p.add_argument("--d_width", type=int, default=32)
  p.add_argument("--embed_dim", type=int, default=32)
  p.add_argument("--d_feature_dim", type=int, default=256)
  p.add_argument("--steps", type=int, default=30, help="timed steps per framework")
  p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
  p.add_argument("--repeats", type=int, default=3, help="timed blocks per framework (best is kept)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--no_torch", action="store_true", help="skip PyTorch")
  p.add_argument("--cpu_devices", type=int, default=2,
                 help="CPU devices for jaxstyle's data-parallel (shard_map) setup; 1: jit only")
  p.add_argument("--torch_threads", default="1,2", help="comma-separated torch thread counts to time")
  p.add_argument("--conv_lowering", default="auto", help="jaxstyle conv lowering: auto, xla or matmul")
  return p


def _batch(args):
  rng = np.random.default_rng(args.seed)
  return (rng.random((args.batch_size, 28, 28, 1)).astype(np.float32),
          rng.integers(0, 10, args.batch_size).astype(np.int32))


def bench_jax(args) -> dict:
  """Times jaxstyle's step on one device and, with ``--cpu_devices`` > 1, data-parallel."""
  import jax  # pylint: disable=g-import-not-at-top
  if args.cpu_devices > 1:
    jax.config.update("jax_num_cpu_devices", args.cpu_devices)  # before the backend starts
  setups = {"jit": _bench_jax_setup(args, "jit")}
  if args.cpu_devices > 1:
    setups[f"shard_map_{args.cpu_devices}dev"] = _bench_jax_setup(args, "shard_map")
  best = min(setups, key=lambda k: setups[k]["ms_per_step"])
  return {**setups[best], "setup": best, "setups": setups, "version": jax.__version__}


def _bench_jax_setup(args, mode: str) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from jaxstyle import parallel, train  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import cgan  # pylint: disable=g-import-not-at-top

  cfg = cgan.CGANConfig(z_dim=args.z_dim, g_width=args.g_width, g_head_width=args.g_head_width,
                        g_norm=args.g_norm, d_width=args.d_width,
                        embed_dim=args.embed_dim, d_feature_dim=args.d_feature_dim,
                        conv_lowering=args.conv_lowering)
  tx = train.adam(2e-4)
  runner = parallel.DataParallel(mode)
  step = runner.compile(train.make_cgan_step(cfg, tx, tx, args.loss))
  state = runner.put_state(jax.tree.map(np.asarray, train.init_cgan_state(cfg, args.seed, tx, tx)))
  x, y = _batch(args)
  batch = runner.put_batch({"image": x, "label": y})
  t0 = time.perf_counter()
  state, m = step(state, batch)
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - t0
  for _ in range(args.warmup - 1):
    state, m = step(state, batch)
  jax.block_until_ready(m)
  best = float("inf")
  for _ in range(args.repeats):
    t0 = time.perf_counter()
    for _ in range(args.steps):
      state, m = step(state, batch)
    jax.block_until_ready(m)
    best = min(best, time.perf_counter() - t0)
  n_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(runner.get_state(state).params))
  return {"steps_per_s": args.steps / best, "ms_per_step": 1000 * best / args.steps,
          "first_step_s": compile_s, "params": n_params, "d_loss": runner.get_metrics(m)["d_loss"],
          "devices": runner.num_devices}


def _torch_models(args):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  w, dw, f, hw = args.g_width, args.d_width, args.d_feature_dim, args.g_head_width

  class Generator(nn.Module):

    def __init__(self):
      super().__init__()
      self.embed = nn.Embedding(10, args.embed_dim)
      self.fc = nn.Linear(args.z_dim + args.embed_dim, 7 * 7 * 2 * w)
      self.norm0 = nn.GroupNorm(1, 2 * w)
      self.up1 = nn.Conv2d(2 * w, 4 * w, 3, padding=1)
      self.norm1 = nn.GroupNorm(1, w)
      self.up2 = nn.Conv2d(w, 4 * max(hw, 1), 3, padding=1)
      self.shuffle = nn.PixelShuffle(2)
      if hw:
        self.norm2 = nn.GroupNorm(1, hw)
        self.head = nn.Conv2d(hw, 1, 3, padding=1)
      if args.g_norm == "none":
        self.norm0 = self.norm1 = self.norm2 = nn.Identity()

    def forward(self, z, y):
      h = self.fc(torch.cat([z, self.embed(y)], 1)).view(-1, 2 * w, 7, 7)
      h = torch.relu(self.norm0(h))
      h = torch.relu(self.norm1(self.shuffle(self.up1(h))))
      h = self.shuffle(self.up2(h))
      if hw:
        h = self.head(torch.relu(self.norm2(h)))
      return torch.sigmoid(h)

  class Discriminator(nn.Module):

    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(1, dw, 4, stride=2, padding=1)
      self.conv2 = nn.Conv2d(dw, 2 * dw, 4, stride=2, padding=1)
      self.fc = nn.Linear(7 * 7 * 2 * dw, f)
      self.out = nn.Linear(f, 1)
      self.embed = nn.Embedding(10, f)

    def forward(self, x, y):
      h = nn.functional.leaky_relu(self.conv1(x * 2 - 1), 0.2)
      h = nn.functional.leaky_relu(self.conv2(h), 0.2)
      phi = nn.functional.leaky_relu(self.fc(h.flatten(1)), 0.2)
      return self.out(phi)[:, 0] + (self.embed(y) * phi).sum(1)

  return Generator(), Discriminator()


def bench_torch(args) -> dict:
  """Times the PyTorch step with each of ``--torch_threads``; the fastest is the reference."""
  import torch  # pylint: disable=g-import-not-at-top
  setups = {}
  for n in [int(t) for t in args.torch_threads.split(",") if t.strip()]:
    torch.set_num_threads(n)
    setups[f"{n}_threads"] = _bench_torch_setup(args)
  best = min(setups, key=lambda k: setups[k]["ms_per_step"])
  return {**setups[best], "setup": best, "setups": setups, "version": torch.__version__}


def _bench_torch_setup(args) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  from torch.nn import functional as F  # pylint: disable=g-import-not-at-top

  torch.manual_seed(args.seed)
  gen, disc = _torch_models(args)
  opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
  x, y = _batch(args)
  x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
  y = torch.from_numpy(y).long()
  yy = torch.cat([y, y])

  def step():
    z = torch.randn(args.batch_size, args.z_dim)
    fake = gen(z, y)
    for p in disc.parameters():
      p.requires_grad_(True)
    logits = disc(torch.cat([x, fake.detach()]), yy)
    real, fake_logits = logits[:args.batch_size], logits[args.batch_size:]
    if args.loss == "hinge":
      d_loss = F.relu(1 - real).mean() + F.relu(1 + fake_logits).mean()
    else:
      d_loss = F.softplus(-real).mean() + F.softplus(fake_logits).mean()
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    for p in disc.parameters():  # G step: no D weight gradients (JAX computes none either)
      p.requires_grad_(False)
    g_logits = disc(fake, y)
    g_loss = -g_logits.mean() if args.loss == "hinge" else F.softplus(-g_logits).mean()
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return d_loss

  t0 = time.perf_counter()
  step()
  first = time.perf_counter() - t0
  for _ in range(args.warmup - 1):
    step()
  best = float("inf")
  for _ in range(args.repeats):
    t0 = time.perf_counter()
    for _ in range(args.steps):
      d_loss = step()
    best = min(best, time.perf_counter() - t0)
  n_params = sum(p.numel() for p in gen.parameters()) + sum(p.numel() for p in disc.parameters())
  return {"steps_per_s": args.steps / best, "ms_per_step": 1000 * best / args.steps,
          "first_step_s": first, "params": n_params, "d_loss": float(d_loss.detach()),
          "threads": torch.get_num_threads()}


def run(argv) -> dict:
  """Parses ``argv`` (list of strings), runs both benchmarks, returns the results."""
  args = _parser().parse_args(list(argv))
  result = {"benchmark": "cgan", "batch_size": args.batch_size, "g_width": args.g_width,
            "d_width": args.d_width, "z_dim": args.z_dim, "timed_steps": args.steps,
            "repeats": args.repeats, "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0], "jax": bench_jax(args)}
  torch_ok = False
  if not args.no_torch:
    try:
      import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
      torch_ok = True
    except ImportError:
      result["torch"] = "not installed"
  if torch_ok:
    result["torch"] = bench_torch(args)
    result["jax_over_torch"] = result["jax"]["steps_per_s"] / result["torch"]["steps_per_s"]
    if result["jax"]["params"] != result["torch"]["params"]:
      result["warning"] = "parameter counts differ between the two implementations"
  result["load_average_1m_after"] = os.getloadavg()[0]
  return result


if __name__ == "__main__":
  print(json.dumps(run(sys.argv[1:]), indent=2, sort_keys=True))
