"""Fuzz: VGG weight files (.npz, .pth zip and pre-1.6, .h5) and format sniffing never escape.

Each parser gets seeded mutations of a small VALID file written by the
library's own writers (``save_weights``, ``torch.save``, h5py in Keras'
layout); every case must load or raise ``WeightsError`` naming the file, and
no pickle is ever executed (hostile ``__reduce__`` payloads in every
container, a marker file that must never appear). See tests/fuzz_testlib.py.
"""

import collections
import io
import os
import pickle

import h5py
import jax
import numpy as np
import pytest

import fuzz_testlib as fz
from jaxstyle import vgg
from jaxstyle.vgg import formats, keras, torch_pickle

torch = pytest.importorskip("torch")

SEED = 13
ALLOWED = (vgg.WeightsError,)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
  """Valid seed files: {kind: bytes}."""
  d = tmp_path_factory.mktemp("vgg_seeds")
  out = {}
  for upto in ("conv1_1", "conv1_2"):
    path = str(d / f"{upto}.npz")
    vgg.save_weights(vgg.random_weights(jax.random.key(0), upto=upto), path)
    out[f"npz_{upto}"] = open(path, "rb").read()
  state = collections.OrderedDict([
      ("features.0.weight", torch.randn(64, 3, 3, 3, generator=torch.Generator().manual_seed(0))),
      ("features.0.bias", torch.zeros(64)), ("classifier.0.weight", torch.zeros(4, 7))])
  for fmt, zip_format in (("pth_zip", True), ("pth_legacy", False)):
    path = str(d / f"{fmt}.pth")
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    out[fmt] = open(path, "rb").read()
  path = str(d / "keras.h5")
  with h5py.File(path, "w") as f:
    g = f.create_group("block1_conv1").create_group("block1_conv1")
    g["kernel:0"] = np.random.default_rng(0).standard_normal((3, 3, 3, 64)).astype(np.float32)
    g["bias:0"] = np.zeros(64, np.float32)
  out["h5"] = open(path, "rb").read()
  for kind in ("npz_conv1_1", "pth_zip", "pth_legacy"):  # the seeds themselves are valid
    path = fz.write(str(d / f"check_{kind}"), out[kind])
    assert vgg.load_weights(path).layers[0] == "conv1_1"
  assert keras.read_h5_params(fz.write(str(d / "check.h5"), out["h5"]))["conv1_1"]
  return out


def _run(parser, n, tmp_path, suffix, mutators, load):
  fz.fuzz(parser, n, SEED, str(tmp_path), suffix, mutators, load, ALLOWED)


def test_fuzz_npz_weights(tmp_path, seeds):
  mutators = fz.npz_mutators(seeds["npz_conv1_1"]) + [
      lambda rng: fz.mutate_bytes(seeds["npz_conv1_2"], rng)]
  _run("vgg.load_weights[npz]", 400, tmp_path, ".npz", mutators, vgg.load_weights)


@pytest.mark.parametrize("use_torch", [False, True])
def test_fuzz_pth_zip(tmp_path, seeds, use_torch):
  data = seeds["pth_zip"]
  mutators = [lambda rng: fz.mutate_bytes(data, rng), lambda rng: fz.mutate_zip(data, rng),
              lambda rng: fz.mutate_zip(data, rng)]
  _run(f"vgg.load_pth[zip, use_torch={use_torch}]", 300 if not use_torch else 150, tmp_path,
       ".pth", mutators, lambda p: vgg.load_pth(p, use_torch=use_torch))


@pytest.mark.parametrize("use_torch", [False, True])
def test_fuzz_pth_legacy(tmp_path, seeds, use_torch):
  data = seeds["pth_legacy"]
  _run(f"vgg.load_pth[legacy, use_torch={use_torch}]", 250 if not use_torch else 120, tmp_path,
       ".pth", [lambda rng: fz.mutate_bytes(data, rng)],
       lambda p: vgg.load_pth(p, use_torch=use_torch))


def _h5_structure(rng):
  """A Keras-layout .h5 with one structural fault: odd datasets, groups, links."""
  buf = io.BytesIO()
  kind = str(rng.choice(["kernel", "kernel", "bias", "layer_is_dataset", "model_weights", "links",
                         "extra", "optimizer"]))
  kernel = rng.standard_normal((3, 3, 3, 64)).astype(np.float32)
  odd = [np.array(b"text"), kernel[0], kernel[:, :, :2], kernel.astype(np.float16),
         kernel.astype(np.int32), np.full_like(kernel, np.nan), np.zeros((0, 3, 3, 64)),
         np.float32(1.0), kernel.astype(np.complex64)]
  choice = int(rng.integers(0, len(odd)))
  with h5py.File(buf, "w") as f:
    root = f.create_group("model_weights") if kind == "model_weights" else f
    if kind == "layer_is_dataset":
      root["block1_conv1"] = kernel
      return buf.getvalue(), "h5: block1_conv1 is a dataset, not a group"
    g = root.create_group("block1_conv1").create_group("block1_conv1")
    g["kernel:0"] = odd[choice] if kind == "kernel" else kernel
    if kind == "bias":
      g["bias:0"], g["bias:1"] = np.zeros(64, np.float32), np.zeros((64, 1), np.float32)
    else:
      g["bias:0"] = np.zeros(64, np.float32)
    if kind == "links":
      g["ext"] = h5py.ExternalLink("/nonexistent/missing.h5", "/x")
      f["block1_conv2"] = h5py.SoftLink("/nowhere")
    elif kind == "extra":
      f.create_group("block9_conv9")["k"] = kernel
      f.create_group("block1_conv2").create_group("w")["kernel:0"] = kernel
    elif kind == "optimizer":
      f.create_group("optimizer_weights").create_group("block1_conv2")["kernel:0"] = odd[choice]
  return buf.getvalue(), f"h5 structure: {kind} (value {choice})"


def test_fuzz_h5(tmp_path, seeds):
  data = seeds["h5"]
  _run("vgg.load_h5", 200, tmp_path, ".h5",
       [lambda rng: fz.mutate_bytes(data, rng), _h5_structure], vgg.load_h5)


def test_fuzz_sniff_and_load_any(tmp_path, seeds):
  """``sniff_format`` and ``load_weights`` on mutations of every format (auto-detected)."""
  kinds = sorted(seeds)

  def any_format(rng):
    kind = kinds[int(rng.integers(0, len(kinds)))]
    data, desc = fz.mutate_bytes(seeds[kind], rng)
    return data, f"{kind}: {desc}"

  _run("vgg.sniff_format", 150, tmp_path, ".bin", [any_format], formats.sniff_format)
  _run("vgg.load_weights[any]", 150, tmp_path, ".w", [any_format], vgg.load_weights)


# ----------------------------------------------------------------------------- no pickle runs


def _legacy_with(payload_at: int, evil: bytes, seeds) -> bytes:
  """A pre-1.6 .pth whose ``payload_at``-th pickle is ``evil`` (0 magic, 1 version, 2 sys info,
  3 the state dict)."""
  good = seeds["pth_legacy"]
  f = io.BytesIO(good)
  ends = []
  for _ in range(4):
    torch_pickle._SafeUnpickler(f, lambda pid: torch_pickle._Storage(np.dtype("f4"), 1)).load()
    ends.append(f.tell())
  starts = [0] + ends[:-1]
  return good[:starts[payload_at]] + evil + good[ends[payload_at]:]


def _evil_files(tmp_path, seeds, marker):
  """(description, path) of .pth/.npz files whose pickles would create ``marker``."""
  flat, nested = fz.evil_pickle(marker), fz.evil_pickle(marker, nest=True)
  files = []

  def add(desc, data, suffix):
    files.append((desc, fz.write(str(tmp_path / f"evil{len(files)}{suffix}"), data)))

  for protocol in (2, 4, 5):
    add(f"raw pickle protocol {protocol}", pickle.dumps(_Builtin(marker), protocol=protocol),
        ".pth")
  for name in ("data.pkl", "archive/data.pkl"):
    for desc, payload in (("flat", flat), ("nested in a state dict", nested)):
      members = [(name, payload), (name.replace("data.pkl", "version"), b"3\n")]
      add(f"zip {name} {desc}", fz.zip_bytes(members), ".pth")
  members = fz.zip_members(seeds["pth_zip"])
  pkl = next(n for n, _ in members if n.endswith("data.pkl"))
  add("torch zip with its data.pkl replaced",
      fz.zip_bytes([(n, nested if n == pkl else p) for n, p in members]), ".pth")
  for at in range(4):
    add(f"legacy .pth with pickle {at} hostile", _legacy_with(at, nested, seeds), ".pth")
  return files


class _Builtin:
  """``builtins.exec`` through a global the unpickler must refuse (STACK_GLOBAL in protocol 4+)."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_no_pickle_ever_executes(tmp_path, seeds):
  marker = str(tmp_path / "PWNED")
  pth = _evil_files(tmp_path, seeds, marker)
  npz = fz.evil_npz_files(str(tmp_path), seeds["npz_conv1_1"], marker)
  failures = fz.refusals(pth + npz, {"load_weights": vgg.load_weights}, ALLOWED, marker)
  failures += fz.refusals(pth, {
      "load_pth[no torch]": lambda p: vgg.load_pth(p, use_torch=False),
      "load_pth[torch]": lambda p: vgg.load_pth(p, use_torch=True),
      "read_torch_state_dict[no torch]":
          lambda p: torch_pickle.read_torch_state_dict(p, use_torch=False)}, ALLOWED, marker)
  assert not failures, "\n".join(failures)
  assert len(pth) >= 12 and len(npz) >= 5 and not os.path.exists(marker)


@pytest.mark.parametrize("use_torch", [False, True])
def test_expanded_views_are_refused_not_copied(tmp_path, use_torch):
  """A 1-element storage viewed as 8192x8192 (stride 0): copying it would need 256 MiB (and a
  bigger view any amount), so the reader refuses it instead of materialising it."""
  path = str(tmp_path / "expanded.pth")
  torch.save({"features.0.weight": torch.zeros(1).expand(2**13, 2**13),
              "features.0.bias": torch.zeros(64)}, path)
  with pytest.raises(vgg.WeightsError, match=r"expanded.pth.*views a storage of only 1 element"):
    torch_pickle.read_torch_state_dict(path, use_torch=use_torch)


def test_huge_memo_index_is_not_a_hang(tmp_path):
  """A damaged LONG_BINPUT memo index (a 20 s hang at 1.26e9 in a larger fuzz pass): the C
  unpickler sizes its memo array by it (gigabytes, cleared); the reader's pure-Python one does
  not."""
  assert issubclass(torch_pickle._SafeUnpickler, pickle._Unpickler)
  memo = b"\x80\x02K\x01r" + (10**8).to_bytes(4, "little") + b"."  # PROTO 2, 1, LONG_BINPUT, STOP
  legacy = fz.write(str(tmp_path / "memo_legacy.pth"), memo)
  zipped = fz.write(str(tmp_path / "memo_zip.pth"), fz.zip_bytes([("archive/data.pkl", memo)]))
  for path in (legacy, zipped):
    escape = fz.run_case("load_pth[no torch]", 0, "memo index 1e8", lambda: vgg.load_pth(
        path, use_torch=False), ALLOWED, os.path.basename(path), must_raise=True)
    assert escape is None, escape
