"""Tests for jaxstyle.vgg weight files: the safe .pth reader (and refusal of
malicious pickles), torchvision/Keras conversion, the .npz format, path
resolution and the download."""

import collections
import hashlib
import os
import pathlib
import pickle
import zipfile

import jax
import numpy as np
import pytest
import torch
from peers import vgg as peer_vgg

from jaxstyle import vgg


@pytest.fixture(scope="module")
def torch_vgg_file(tmp_path_factory):
  """A full random VGG-19 saved as torchvision would (with a classifier entry)."""
  path = tmp_path_factory.mktemp("pth") / "vgg19.pth"
  return peer_vgg.save_torchvision_pth(str(path), seed=0), str(path)


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
