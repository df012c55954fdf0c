"""Fuzz: the MNIST IDX reader (plain and ``.gz``) loads or raises ``DataError`` naming the file.

Seeds are small valid IDX files (5 images, 5 labels) written here, plus the
real ``train-labels-idx1-ubyte.gz`` of ../shared/data/mnist; mutations are
byte-level, of the compressed and of the uncompressed bytes, and of the
header's declared dimensions (huge sizes must not allocate).
"""

import gzip
import os
import shutil
import struct

import numpy as np
import pytest

import fuzz_testlib as fz
from jaxstyle.data import mnist
from jaxstyle.errors import DataError

SEED = 13
ALLOWED = (DataError,)


def _idx(array: np.ndarray) -> bytes:
  code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
  return bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape) \
      + array.tobytes()


def _gz(data: bytes) -> bytes:
  return gzip.compress(data, mtime=0)


@pytest.fixture(scope="module")
def seeds():
  rng = np.random.default_rng(0)
  images = _idx(rng.integers(0, 256, (5, 28, 28), dtype=np.uint8))
  labels = _idx(rng.integers(0, 10, (5,), dtype=np.uint8))
  return {"images": images, "labels": labels, "ints": _idx(np.arange(6, dtype=">i4").reshape(2, 3))}


def _header(data: bytes, rng) -> tuple[bytes, str]:
  """The IDX header with its dtype code, rank or a dimension replaced."""
  out = bytearray(data)
  kind = str(rng.choice(["dtype", "ndim", "dim", "dim"]))
  if kind == "dtype":
    out[2] = int(rng.choice([0x00, 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0xFF]))
    return bytes(out), f"header dtype code 0x{out[2]:02x}"
  if kind == "ndim":
    out[3] = int(rng.choice([0, 2, 4, 200, 255]))
    return bytes(out), f"header rank {out[3]}"
  i = int(rng.integers(0, data[3]))
  value = int(rng.choice([0, 1, 2**16, 2**31, 2**32 - 1]))
  out[4 + 4 * i:8 + 4 * i] = struct.pack(">I", value)
  return bytes(out), f"header dim {i} = {value}"


def _mutators(seeds):
  out = []
  for name, data in seeds.items():
    out += [lambda rng, d=data, n=name: _tagged(n, fz.mutate_bytes(d, rng)),
            lambda rng, d=data, n=name: _tagged(n, _header(d, rng))]
  return out


def _tagged(name, result):
  data, desc = result
  return data, f"{name}: {desc}"


def test_fuzz_read_idx(tmp_path, seeds):
  for name, data in seeds.items():  # the seeds themselves are valid
    assert mnist.read_idx(fz.write(str(tmp_path / name), data)).shape[0] in (2, 5)
  fz.fuzz("mnist.read_idx", 400, SEED, str(tmp_path), "-idx", _mutators(seeds), mnist.read_idx,
          ALLOWED)


def test_fuzz_read_idx_gz(tmp_path, seeds, shared_data):
  real = open(os.path.join(shared_data, "mnist", "train-labels-idx1-ubyte.gz"), "rb").read()
  compressed = [lambda rng, d=_gz(d): fz.mutate_bytes(d, rng) for d in seeds.values()]
  uncompressed = [lambda rng, m=m: _gz_of(m(rng)) for m in _mutators(seeds)]
  fz.fuzz("mnist.read_idx[gz]", 400, SEED, str(tmp_path), "-idx.gz",
          compressed + uncompressed + [lambda rng: fz.mutate_bytes(real, rng)], mnist.read_idx,
          ALLOWED)


def _gz_of(result):
  data, desc = result
  return _gz(data), f"gzip of ({desc})"


def test_fuzz_load_mnist_idx_folder(tmp_path, seeds):
  """A folder of the four files with one of them mutated (load_mnist_idx, as --mnist_dir)."""
  good = tmp_path / "good"
  good.mkdir()
  for split, (img, lbl) in mnist.MNIST_FILES.items():
    fz.write(str(good / img), seeds["images"])
    fz.write(str(good / (lbl + ".gz")), _gz(seeds["labels"]))
  assert mnist.load_mnist_idx(str(good), "test")[0].shape == (5, 28, 28)
  escapes = []
  for i in range(40):
    seed, rng = fz.rng_for("mnist.load_mnist_idx", i, SEED)
    folder = tmp_path / f"case{i}"
    shutil.copytree(good, folder)
    victim = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz"][i % 2]
    data, mutation = fz.mutate_bytes((folder / victim).read_bytes(), rng)
    if i % 10 == 9:
      os.remove(folder / victim)
      os.mkdir(folder / victim)
      mutation = "a directory in place of the file"
    else:
      fz.write(str(folder / victim), data)
    escape = fz.run_case("mnist.load_mnist_idx", seed, f"{victim}: {mutation}",
                         lambda: mnist.load_mnist_idx(str(folder), "test"), ALLOWED, victim)
    if escape:
      escapes.append(escape)
  fz.assert_no_escapes(escapes, 40, "mnist.load_mnist_idx")
