"""Tests for jaxstyle.vgg: parity with an independent PyTorch VGG-19, pooling,
real partial weights, weight files (npz/pth/h5), path resolution, CLI, safety."""

import collections
import hashlib
import os
import pathlib
import pickle
import subprocess
import sys
import zipfile

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxstyle import vgg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELU_TAPS = [t for t in vgg.TAPS if t.startswith("relu")]

# ----------------------------------------------------------------------------
# An independent PyTorch VGG-19 trunk with torchvision's `features` indices.

_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
        512, 512, 512, 512, "M"]


def _torch_vgg19_features(seed, dtype=torch.float64):
  torch.manual_seed(seed)
  layers, cin = [], 3
  for v in _CFG:
    if v == "M":
      layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
    else:
      conv = torch.nn.Conv2d(cin, v, kernel_size=3, padding=1)
      torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
      torch.nn.init.uniform_(conv.bias, -0.1, 0.1)
      layers += [conv, torch.nn.ReLU(inplace=False)]
      cin = v
  return torch.nn.Sequential(*layers).to(dtype).eval()


def _torch_relu_outputs(features, x_nchw):
  """{relu tap name: NHWC numpy} from running the torch Sequential."""
  relu_names = iter(RELU_TAPS)
  out = {}
  with torch.no_grad():
    for module in features:
      x_nchw = module(x_nchw)
      if isinstance(module, torch.nn.ReLU):
        out[next(relu_names)] = x_nchw.permute(0, 2, 3, 1).numpy()
  return out


@pytest.fixture(scope="module")
def torch_vgg_file(tmp_path_factory):
  """A full random VGG-19 saved as torchvision would (with a classifier entry)."""
  features = _torch_vgg19_features(seed=0)
  state = collections.OrderedDict(
      (f"features.{k}", v.float()) for k, v in features.state_dict().items())
  state["classifier.0.weight"] = torch.zeros(4, 7)  # ignored by the converter
  path = tmp_path_factory.mktemp("pth") / "vgg19.pth"
  torch.save(state, path)
  return features, str(path)


def _rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _images(shape, seed=0):
  return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(np.float32)


@pytest.mark.parametrize("convention", ["torch", "caffe"])
def test_parity_with_independent_torch_vgg19(torch_vgg_file, convention):
  features, path = torch_vgg_file
  weights = vgg.load_pth(path, preprocessing=convention)
  assert weights.preprocessing == convention and weights.layers == vgg.CONV_LAYERS
  images = _images((2, 37, 52, 3))  # non-square, odd: exercises the floor pooling
  rgb = torch.from_numpy(images.astype(np.float64)).permute(0, 3, 1, 2)
  if convention == "torch":
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    x = (rgb - mean) / std
  else:
    mean_bgr = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)
    x = rgb.flip(1) * 255.0 - mean_bgr
  expected = _torch_relu_outputs(features, x)
  got = jax.jit(lambda w, x: vgg.extract(w, x, RELU_TAPS))(weights, jnp.asarray(images))
  assert set(got) == set(RELU_TAPS)
  errors = {}
  for tap in RELU_TAPS:
    assert got[tap].shape == expected[tap].shape, tap
    assert got[tap].dtype == jnp.float32
    errors[tap] = _rel_err(got[tap], expected[tap])
    assert errors[tap] < 1e-5, (tap, errors[tap])
  print(f"{convention}: max relative error {max(errors.values()):.2e} at {max(errors, key=errors.get)}")
  assert expected["relu5_4"].shape == (2, 2, 3, 512)  # 37x52 -> 18x26 -> 9x13 -> 4x6 -> 2x3


def test_pth_readers_agree_without_torch(tmp_path):
  """The restricted unpickler (no torch) reads what torch.load reads, both formats."""
  state = collections.OrderedDict([
      ("features.0.weight", torch.randn(64, 3, 3, 3)), ("features.0.bias", torch.randn(64)),
      ("strided", torch.randn(5, 6)[:, 1:4]), ("half", torch.randn(7).half()),
      ("bf16", torch.randn(3).bfloat16()), ("nested", {"x": [torch.arange(4)]})])
  for zip_format in (True, False):
    path = tmp_path / f"s{int(zip_format)}.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    ours = vgg.read_torch_state_dict(str(path), use_torch=False)
    theirs = vgg.read_torch_state_dict(str(path), use_torch=True)
    for key in ("features.0.weight", "features.0.bias", "strided", "half", "bf16"):
      ref = state[key].float().numpy()
      np.testing.assert_array_equal(np.asarray(ours[key], np.float32), ref)
      np.testing.assert_array_equal(np.asarray(theirs[key], np.float32), ref)
    np.testing.assert_array_equal(ours["nested"]["x"][0], np.arange(4))
    w_ours = vgg.load_pth(str(path), use_torch=False)
    np.testing.assert_array_equal(w_ours.params["conv1_1"]["kernel"],
                                  state["features.0.weight"].numpy().transpose(2, 3, 1, 0))


def test_pth_prefixes_nesting_and_partial(tmp_path, torch_vgg_file):
  features, _ = torch_vgg_file
  sd = features.float().state_dict()
  partial = {f"module.features.{k}": v for k, v in sd.items() if int(k.split(".")[0]) <= 16}
  path = tmp_path / "partial.pth"
  torch.save({"state_dict": partial, "epoch": 3}, path)
  w = vgg.load_pth(str(path))
  assert w.layers == vgg.CONV_LAYERS[:8] and w.deepest_layer == "relu3_4"
  np.testing.assert_array_equal(w.params["conv3_4"]["bias"], sd["16.bias"].float().numpy())
  bare = tmp_path / "bare.pth"
  torch.save({k: v for k, v in sd.items() if int(k.split(".")[0]) < 4}, bare)  # features.state_dict()
  assert vgg.load_pth(str(bare)).layers == ("conv1_1", "conv1_2")
  bn = tmp_path / "bn.pth"
  torch.save({"features.0.weight": sd["0.weight"], "features.0.bias": sd["0.bias"],
              "features.1.weight": torch.ones(64), "features.1.bias": torch.zeros(64)}, bn)
  with pytest.raises(vgg.WeightsError, match="features.1 .*VGG-19-BN"):
    vgg.load_pth(str(bn))
  gap = tmp_path / "gap.pth"
  torch.save({f"features.{k}": v for k, v in sd.items() if k.split(".")[0] in ("0", "5")}, gap)
  with pytest.raises(vgg.WeightsError, match="missing conv1_2"):
    vgg.load_pth(str(gap))


# ----------------------------------------------------------------------------
# Malicious pickles are refused, not executed.


class _Evil:

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("use_torch", [True, False])
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_malicious_pickle_is_refused(tmp_path, use_torch, container):
  marker = tmp_path / "pwned"
  payload = pickle.dumps({"features.0.weight": _Evil(marker)}, protocol=2)
  path = tmp_path / "evil.pth"
  if container == "zip":  # torch's zip layout with a hostile data.pkl
    with zipfile.ZipFile(path, "w") as z:
      z.writestr("archive/data.pkl", payload)
      z.writestr("archive/version", "3\n")
  else:  # a raw pickle (torch's pre-1.6 layout starts with a pickle too)
    path.write_bytes(payload)
  for load in (lambda: vgg.load_pth(str(path), use_torch=use_torch),
               lambda: vgg.load_weights(str(path))):
    with pytest.raises(vgg.WeightsError, match=r"refused to load.*references posix\.system"):
      load()
  assert not marker.exists()


# ----------------------------------------------------------------------------
# Pooling.


def test_reshape_max_pool_matches_flax_and_has_deterministic_grad():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 7, 9, 5)).astype(np.float32))
  ours = vgg.max_pool_2x2(x)
  ref = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
  assert ours.shape == (2, 3, 4, 5)  # odd sizes drop the last row/column
  np.testing.assert_array_equal(ours, ref)
  np.testing.assert_array_equal(ours, vgg.max_pool_2x2(x[:, :6, :8]))
  w = jnp.asarray(np.random.default_rng(2).normal(size=ours.shape).astype(np.float32))
  grad = jax.jit(jax.grad(lambda v: jnp.sum(vgg.max_pool_2x2(v) * w)))
  g1, g2 = grad(x), grad(x)
  np.testing.assert_array_equal(g1, g2)
  g_ref = jax.grad(lambda v: jnp.sum(nn.max_pool(v, (2, 2), strides=(2, 2), padding="VALID") * w))(x)
  np.testing.assert_array_equal(g1, g_ref)  # no ties in random data: same gradient
  assert np.all(np.asarray(g1)[:, 6, :, :] == 0) and np.all(np.asarray(g1)[:, :, 8, :] == 0)
  avg = vgg.avg_pool_2x2(x)
  np.testing.assert_allclose(avg, nn.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID"),
                             rtol=1e-6, atol=1e-6)


def test_vgg_input_gradient_is_bit_identical(vgg_partial):
  images = jnp.asarray(_images((1, 33, 30, 3), seed=3))
  f = vgg.feature_fn(vgg_partial, ["relu3_1"])
  grad = jax.jit(jax.grad(lambda x: jnp.sum(f(x)["relu3_1"] ** 2)))
  g1, g2 = np.asarray(grad(images)), np.asarray(grad(images))
  assert np.all(np.isfinite(g1)) and np.any(g1 != 0)
  np.testing.assert_array_equal(g1, g2)


# ----------------------------------------------------------------------------
# Real partial weights.


def test_real_partial_weights(vgg_partial, vgg_partial_path):
  assert vgg_partial.preprocessing == "caffe"
  assert vgg_partial.layers == vgg.CONV_LAYERS[:8] and vgg_partial.deepest_layer == "relu3_4"
  images = jnp.asarray(_images((2, 45, 38, 3), seed=4))
  feats = vgg.extract(vgg_partial, images, ["relu1_1", "relu2_1", "relu3_1", "relu3_4", "pool3"])
  assert feats["relu3_1"].shape == (2, 11, 9, 256) and feats["pool3"].shape == (2, 5, 4, 256)
  for name, f in feats.items():
    assert np.all(np.isfinite(f)) and float(jnp.max(f)) > 0, name
  # Features only depend on the layers computed: a shallower request gives the same numbers.
  np.testing.assert_array_equal(vgg.extract(vgg_partial, images, ["relu2_1"])["relu2_1"],
                                feats["relu2_1"])
  for too_deep in (["relu4_1"], ["relu1_1", "relu4_1"], ["conv5_1"], ["pool4"]):
    with pytest.raises(vgg.WeightsError, match=r"deepest available layer: relu3_4") as info:
      vgg.extract(vgg_partial, images, too_deep)
    assert vgg_partial_path in str(info.value) and "relu1_1" not in str(info.value).split("need")[0]
  with pytest.raises(vgg.WeightsError, match="unknown VGG-19 layer 'relu6_1'"):
    vgg.feature_fn(vgg_partial, ["relu6_1"])
  np.testing.assert_array_equal(vgg.extract(vgg_partial, images, "relu2_1")["relu2_1"],
                                feats["relu2_1"])  # a single name is one layer, not characters
  with pytest.raises(ValueError, match="too small for pool3"):
    vgg.extract(vgg_partial, images[:, :7, :7], ["pool3"])


def test_weights_are_a_pytree_for_jit(vgg_partial):
  images = jnp.asarray(_images((1, 20, 24, 3), seed=6))
  layers = ("relu1_2", "relu2_1")
  as_arg = jax.jit(lambda w, x: vgg.extract(w, x, layers))(vgg_partial, images)
  closed = vgg.feature_fn(vgg_partial, layers)(images)
  for name in layers:
    assert _rel_err(as_arg[name], closed[name]) < 1e-6  # jit vs eager: rounding only
  leaves, treedef = jax.tree.flatten(vgg_partial)
  assert len(leaves) == 16
  back = jax.tree.unflatten(treedef, leaves)
  assert back.preprocessing == "caffe" and back.layers == vgg_partial.layers


def test_bf16_features_close_to_f32(vgg_partial):
  images = jnp.asarray(_images((1, 40, 40, 3), seed=5))
  layers = ["relu1_1", "relu2_1", "relu3_1"]
  f32 = jax.jit(vgg.feature_fn(vgg_partial, layers))(images)
  bf16 = jax.jit(vgg.feature_fn(vgg_partial, layers, dtype=jnp.bfloat16))(images)
  for name in layers:
    assert bf16[name].dtype == jnp.bfloat16
    err = _rel_err(np.asarray(bf16[name], np.float32), f32[name])
    assert 1e-5 < err < 3e-2, (name, err)  # really computed in bf16, and still close


# ----------------------------------------------------------------------------
# Weight files and path resolution.


def test_save_load_round_trip(tmp_path):
  w = vgg.random_weights(jax.random.key(0), upto="conv2_2", preprocessing="torch")
  path = tmp_path / "sub" / "w.npz"
  vgg.save_weights(w, str(path))
  assert os.listdir(path.parent) == ["w.npz"]  # no temp files left behind
  back = vgg.load_weights(str(path))
  assert back.preprocessing == "torch" and back.layers == w.layers and back.source == str(path)
  for name in w.layers:
    for kind in ("kernel", "bias"):
      np.testing.assert_array_equal(back.params[name][kind], w.params[name][kind])
  assert vgg.load_weights(str(path), preprocessing="caffe").preprocessing == "caffe"


def test_weight_path_resolution(tmp_path, monkeypatch):
  explicit, env = tmp_path / "explicit.npz", tmp_path / "env.npz"
  cache = tmp_path / "home" / ".cache" / "jaxstyle" / "vgg19.npz"
  for p in (explicit, env, cache):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  monkeypatch.setenv(vgg.ENV_VAR, str(env))
  assert vgg.resolve_weights_path(str(explicit)) == str(explicit)
  assert vgg.resolve_weights_path(None) == str(env)
  monkeypatch.delenv(vgg.ENV_VAR)
  assert vgg.resolve_weights_path(None) == str(cache)
  cache.unlink()
  with pytest.raises(vgg.WeightsError) as info:
    vgg.resolve_weights_path(None)
  message = str(info.value)
  for hint in (str(cache), "--vgg_weights", vgg.ENV_VAR, "python -m jaxstyle.vgg download",
               "python -m jaxstyle.vgg convert"):
    assert hint in message
  with pytest.raises(vgg.WeightsError, match=r"not found at .*nope\.npz \(from --vgg_weights\)"):
    vgg.load_weights(str(tmp_path / "nope.npz"))


def test_malformed_weight_files(tmp_path):
  garbage = tmp_path / "garbage.npz"
  garbage.write_bytes(b"this is not a weight file")
  with pytest.raises(vgg.WeightsError, match="garbage.npz"):
    vgg.load_weights(str(garbage))
  truncated = tmp_path / "truncated.npz"
  good = tmp_path / "good.npz"
  vgg.save_weights(vgg.random_weights(jax.random.key(1), upto="conv1_2"), str(good))
  truncated.write_bytes(good.read_bytes()[:2000])
  with pytest.raises(vgg.WeightsError, match="truncated.npz"):
    vgg.load_weights(str(truncated))
  k = np.zeros((3, 3, 3, 64), np.float32)
  cases = {
      "transposed": ({"conv1_1/kernel": k.transpose(3, 2, 0, 1), "conv1_1/bias": np.zeros(64)},
                     r"conv1_1/kernel has shape \(64, 3, 3, 3\), expected HWIO"),
      "bias": ({"conv1_1/kernel": k, "conv1_1/bias": np.zeros(63)}, "conv1_1/bias has shape"),
      "gap": ({"conv1_1/kernel": k, "conv1_1/bias": np.zeros(64),
               "conv2_1/kernel": np.zeros((3, 3, 64, 128)), "conv2_1/bias": np.zeros(128)},
              "missing conv1_2"),
      "empty": ({"foo": np.zeros(3)}, "no VGG-19 conv layers"),
      "nan": ({"conv1_1/kernel": k + np.nan, "conv1_1/bias": np.zeros(64)}, "non-finite"),
      "text": ({"conv1_1/kernel": np.array(["a"]), "conv1_1/bias": np.zeros(64)}, "not numeric"),
      "convention": ({"conv1_1/kernel": k, "conv1_1/bias": np.zeros(64),
                      "preprocessing": np.asarray("tf")}, "unknown preprocessing 'tf'"),
      "convention_array": ({"conv1_1/kernel": k, "conv1_1/bias": np.zeros(64),
                            "preprocessing": np.zeros(3)}, "'preprocessing' entry must be one string"),
  }
  for name, (arrays, pattern) in cases.items():
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    with pytest.raises(vgg.WeightsError, match=pattern):
      vgg.load_weights(str(path))
  obj = tmp_path / "object.npz"
  np.savez(obj, **{"conv1_1/kernel": np.array([k], dtype=object), "conv1_1/bias": np.zeros(64)})
  with pytest.raises(vgg.WeightsError, match="object.npz"):  # pickled arrays are never loaded
    vgg.load_weights(str(obj))


def test_keras_h5_conversion(tmp_path, vgg_partial):
  h5py = pytest.importorskip("h5py")
  keras2 = tmp_path / "keras2.h5"  # Keras 2 layout: layer group / layer group / kernel:0
  with h5py.File(keras2, "w") as f:
    names = []
    for name in vgg_partial.layers:
      b, c = name[len("conv"):].split("_")
      layer = f"block{b}_conv{c}"
      names.append(layer.encode())
      g = f.create_group(layer)
      g.attrs["weight_names"] = [f"{layer}/kernel:0".encode(), f"{layer}/bias:0".encode()]
      g.create_dataset(f"{layer}/kernel:0", data=vgg_partial.params[name]["kernel"])
      g.create_dataset(f"{layer}/bias:0", data=vgg_partial.params[name]["bias"])
    f.attrs["layer_names"] = names + [b"block3_pool", b"input_1"]
    f.create_group("input_1")
  keras3 = tmp_path / "keras3.weights.h5"  # Keras 3 layout: layers/<name>/vars/{0,1}
  with h5py.File(keras3, "w") as f:
    for name in vgg_partial.layers[:2]:
      b, c = name[len("conv"):].split("_")
      g = f.create_group(f"layers/block{b}_conv{c}/vars")
      g.create_dataset("0", data=vgg_partial.params[name]["kernel"])
      g.create_dataset("1", data=vgg_partial.params[name]["bias"])
    f.create_dataset("optimizer/vars/0", data=np.zeros(3))
  w2 = vgg.load_h5(str(keras2))
  assert w2.preprocessing == "caffe" and w2.layers == vgg_partial.layers
  for name in w2.layers:
    np.testing.assert_array_equal(w2.params[name]["kernel"], vgg_partial.params[name]["kernel"])
    np.testing.assert_array_equal(w2.params[name]["bias"], vgg_partial.params[name]["bias"])
  w3 = vgg.load_weights(str(keras3))  # detected by content
  assert w3.layers == ("conv1_1", "conv1_2")
  np.testing.assert_array_equal(w3.params["conv1_2"]["kernel"], vgg_partial.params["conv1_2"]["kernel"])


# ----------------------------------------------------------------------------
# Download (never touches the network here) and the command line.


def test_download_verifies_converts_and_caches(tmp_path, torch_vgg_file):
  _, pth = torch_vgg_file
  digest = hashlib.sha256(pathlib.Path(pth).read_bytes()).hexdigest()
  good = tmp_path / f"vgg19-{digest[:8]}.pth"
  good.write_bytes(pathlib.Path(pth).read_bytes())
  dest = tmp_path / "cache" / "vgg19.npz"
  out = vgg.download(good.as_uri(), str(dest), progress=False)
  assert out == str(dest) and sorted(os.listdir(dest.parent)) == ["vgg19.npz"]
  w = vgg.load_weights(out)
  assert w.preprocessing == "torch" and w.layers == vgg.CONV_LAYERS
  np.testing.assert_array_equal(w.params["conv5_4"]["bias"], vgg.load_pth(pth).params["conv5_4"]["bias"])
  bad = tmp_path / f"vgg19-{'0' * 8 if digest[0] != '0' else '1' * 8}.pth"
  bad.write_bytes(good.read_bytes())
  dest2 = tmp_path / "cache2" / "vgg19.npz"
  with pytest.raises(vgg.WeightsError, match="checksum mismatch"):
    vgg.download(bad.as_uri(), str(dest2), progress=False)
  assert os.listdir(dest2.parent) == []  # neither the .pth nor a partial .npz is left
  calls = []
  vgg.download(good.as_uri(), str(dest), fetch=lambda *a: calls.append(a), progress=False)
  assert calls == []  # cached: nothing fetched
  with pytest.raises(vgg.WeightsError, match="no SHA-256 prefix"):
    vgg.download((tmp_path / "vgg19.pth").as_uri(), str(tmp_path / "x.npz"), progress=False)


def _cli(*args):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", "jaxstyle.vgg", *map(str, args)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def test_cli_convert_info_and_usage_errors(tmp_path, torch_vgg_file):
  _, pth = torch_vgg_file
  dst = tmp_path / "out.npz"
  proc = _cli("convert", pth, dst, "--preprocessing", "caffe")
  assert proc.returncode == 0, proc.stderr
  w = vgg.load_weights(str(dst))
  assert w.preprocessing == "caffe" and w.layers == vgg.CONV_LAYERS
  np.testing.assert_array_equal(w.params["conv1_1"]["kernel"], vgg.load_pth(pth).params["conv1_1"]["kernel"])
  proc = _cli("info", dst)
  assert proc.returncode == 0, proc.stderr
  assert "preprocessing: caffe" in proc.stdout and "16 of 16" in proc.stdout
  assert "conv5_4: kernel (3, 3, 512, 512) HWIO" in proc.stdout
  proc = _cli("convert", pth)  # bad usage, end to end: one line, exit 2
  assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "required: dst" in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cli_usage_errors_in_process(tmp_path, capsys, torch_vgg_file):
  _, pth = torch_vgg_file
  for args, pattern in ((("convert", pth, tmp_path / "o.npz", "--preprocessing", "tf"),
                         "invalid choice: 'tf'"),
                        (("frobnicate",), "invalid choice"),
                        ((), "required: command"),
                        (("convert", pth, tmp_path / "o.txt"), "must be a .npz"),
                        (("info", tmp_path / "missing.pth"), "missing.pth: no such file")):
    try:
      code = vgg.main([str(a) for a in args])
    except SystemExit as e:
      code = e.code
    err = capsys.readouterr().err
    assert code == 2, (args, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], err
  assert not (tmp_path / "o.npz").exists() and not (tmp_path / "o.txt").exists()
