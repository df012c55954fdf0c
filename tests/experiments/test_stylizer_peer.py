"""experiments/peers/stylizer.py against jaxstyle's generator, and the `stylizer` benchmark's record.

The twin is built from the architecture description; parity is checked on
random parameters (every leaf seeded noise, StyleMods included) and odd sizes.
"""

import dataclasses
import json

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks import stylizer as bench
from jaxstyle import vgg
from jaxstyle.nets import patchgan
from jaxstyle.nets import style_encoder as se
from jaxstyle.nets import stylizer as st
from jaxstyle.train import stylizer as ts
from peers import stylizer as peer

SMALL = {"widths": (8, 16, 32), "stem_kernel": 9, "residual_blocks": 2, "latent_dim": 8}


def _to_nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("upsample,output", [("nearest", "sigmoid"), ("bilinear", "tanh")])
def test_twin_equals_jaxstyle_generator(upsample, output):
  cfg = st.StylizerConfig(upsample=upsample, output=output, **SMALL)
  params = bench.random_generator_params(cfg, seed=1)
  rng = np.random.default_rng(2)
  images = rng.random((2, 37, 50, 3), dtype=np.float32)
  latent = rng.standard_normal((2, cfg.latent_dim)).astype(np.float32)
  want = np.asarray(jax.jit(st.stylizer_fn(cfg))(params, images, latent))
  twin = peer.TorchStylizer(upsample=upsample, output=output, **SMALL).load_jax_params(params)
  with torch.no_grad():
    got = twin(_to_nchw(images), torch.from_numpy(latent)).permute(0, 2, 3, 1).numpy()
  assert got.shape == want.shape == (2, 37, 50, 3)
  assert want.std() > 0.05  # not saturated: the comparison sees the whole network
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
  # The latent matters (StyleMods perturbed) and a [D] latent broadcasts over the batch.
  with torch.no_grad():
    other = twin(_to_nchw(images), torch.from_numpy(latent[0]))
  assert not np.allclose(other.permute(0, 2, 3, 1).numpy()[1], want[1], atol=1e-3)


def test_twin_rejects_params_of_another_architecture():
  params = bench.random_generator_params(st.StylizerConfig(**SMALL), seed=0)
  with pytest.raises(ValueError, match="res2"):
    peer.TorchStylizer(**{**SMALL, "residual_blocks": 3}).load_jax_params(params)
  with pytest.raises(ValueError, match="no place"):
    peer.TorchStylizer(**{**SMALL, "residual_blocks": 1}).load_jax_params(params)
  with pytest.raises(ValueError, match="shape"):
    peer.TorchStylizer(**{**SMALL, "latent_dim": 4}).load_jax_params(params)


def test_twin_default_architecture_has_jaxstyle_parameter_count():
  cfg = st.StylizerConfig()
  shapes = jax.eval_shape(lambda k: st.init_stylizer(cfg, k), jax.random.key(0))
  n_jax = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
  assert peer.num_params(peer.TorchStylizer()) == n_jax


def test_transformer_net_parameter_count_and_odd_sizes():
  net = peer.TransformerNet()
  assert peer.num_params(net) == 1_679_235  # the PyTorch examples' TransformerNet
  with torch.no_grad():
    out = net(torch.rand(1, 3, 37, 50))
  assert out.shape == (1, 3, 40, 52)  # 4 * ceil(size / 4): two stride-2 convs, two 2x upsamples


def test_train_step_loss_equals_jaxstyle_eval():
  """The torch step's loss parts are make_stylizer_eval's on the same params, latents and Grams."""
  arch = {"widths": (4, 8), "stem_kernel": 3, "residual_blocks": 1, "latent_dim": 8}
  gcfg = st.StylizerConfig(**arch)
  cfg = ts.StylizerTrainConfig(
      generator=gcfg, discriminator=patchgan.PatchGANConfig(latent_dim=8),
      encoder=se.StyleEncoderConfig(latent_dim=8), latent_source="bank", d_steps=0,
      content_layers=(("relu2_1", 1.0),), style_layers=(("relu1_1", 1.0), ("relu2_1", 0.5)),
      tv_weight=10.0, identity_weight=1e3)
  weights = vgg.random_weights(jax.random.key(0), upto="conv2_1")
  rng = np.random.default_rng(4)
  content = rng.random((2, 24, 24, 3), dtype=np.float32)
  grams = jax.tree.map(np.asarray, ts.style_grams(cfg, weights, rng.random((3, 24, 24, 3),
                                                                          dtype=np.float32)))
  bank = rng.standard_normal((3, 8)).astype(np.float32)
  params = bench.random_generator_params(gcfg, seed=3)
  idx = np.array([2, 0])
  want = ts.make_stylizer_eval(cfg, weights)(params, content, bank[idx],
                                             {k: v[idx] for k, v in grams.items()})
  step = peer.StylizerTrainStep(
      peer.TorchStylizer(**arch).load_jax_params(params), jax.tree.map(np.asarray, weights.params),
      weights.preprocessing, content, grams, dict(cfg.content_layers), dict(cfg.style_layers),
      (cfg.content_weight, cfg.style_weight, cfg.tv_weight, cfg.identity_weight), bank,
      channels_last=True)
  with torch.no_grad():
    got = step.loss_parts(_to_nchw(content), torch.from_numpy(idx))
  for key in ("content", "style", "tv", "identity"):
    np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=1e-4, err_msg=key)
  np.testing.assert_allclose(float(got["g_loss"]), float(want["loss"]), rtol=1e-4)
  before = step.bank.detach().clone()
  assert set(step.step()) == {"g_loss", "content", "style", "tv", "identity"}
  assert not torch.equal(before, step.bank.detach())  # the bank learns too


def test_benchmark_options_default_to_the_generator_config():
  from benchmarks import stylizer as bench
  options = bench.Options()
  for field in ("widths", "stem_kernel", "residual_blocks", "latent_dim", "upsample", "output"):
    assert getattr(options, field) == getattr(st.StylizerConfig(), field), field


def _tiny_options(**changes):
  tiny = dict(sizes=(16,), batches=(1,), repeats=1, warmup=1, torch_modes=("eager",),
              layouts=("channels_last",), torch_threads=(1,), train_crop=16, train_batch=1,
              memory_size=16, memory_batches=(1,), **SMALL)
  return dataclasses.replace(bench.Options(), **{**tiny, **changes})


def test_benchmark_tiny_inference_record():
  out = bench.run(_tiny_options(no_train=True, memory_size=0))
  (row,) = out["inference"]
  assert row["size"] == 16 and row["batch"] == 1
  for impl in ("jaxstyle", "twin", "transformer_net"):
    assert row[impl]["img_per_s"] > 0, impl
  assert row["twin"]["best"] == "eager_channels_last_1t"
  assert row["twin"]["variants"]["eager_channels_last_1t"]["threads"] == 1
  assert row["jaxstyle"]["compile_s"] > 0 and "median_ms" in row["jaxstyle"]
  assert row["jaxstyle_over_transformer_net"] == pytest.approx(
      row["jaxstyle"]["img_per_s"] / row["transformer_net"]["img_per_s"])
  assert row["jaxstyle_over_twin"] > 0
  assert out["twin_max_abs_diff"] < 1e-4
  assert out["params"]["jaxstyle"] == out["params"]["twin"]
  assert out["params"]["transformer_net"] == 1_679_235
  assert "train" not in out and "peak_memory" not in out


@pytest.mark.slow  # a jitted train step and three subprocesses, about 40 s
def test_benchmark_tiny_train_and_memory_record():
  out = bench.run(_tiny_options())
  train = out["train"]
  assert train["jaxstyle"]["steps_per_s"] > 0 and train["twin"]["steps_per_s"] > 0
  assert train["jaxstyle"]["compile_s"] > 0
  assert train["jaxstyle_over_twin"] > 0
  (mem,) = out["peak_memory"]
  for impl in ("jaxstyle", "twin", "transformer_net"):
    assert mem[impl]["peak_mib"] >= mem[impl]["before_run_mib"] > 0, impl


def test_benchmark_architecture_from_checkpoint(tmp_path):
  from jaxstyle import config as cfglib
  from jaxstyle.errors import ConfigError
  gcfg = st.StylizerConfig(widths=(8, 16), residual_blocks=3, upsample="bilinear")
  for model in (cfglib.to_dict(gcfg), {"generator": cfglib.to_dict(gcfg), "d_steps": 0}):
    (tmp_path / "config.json").write_text(json.dumps({"config": {}, "model": model}))
    assert bench.generator_config(bench.Options(checkpoint=str(tmp_path))) == gcfg
  with pytest.raises(ConfigError, match="config.json"):
    bench.generator_config(bench.Options(checkpoint=str(tmp_path / "missing")))
