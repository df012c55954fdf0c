"""End-to-end test of jaxstyle.data.tfds_source: MNIST prepared by TFDS from a local server.

The four IDX ``.gz`` files from ``shared/data/mnist`` are served over HTTP on
127.0.0.1 and the TFDS MNIST builder's ``URL`` points there; the project's own
loader (``data.load_mnist`` without ``mnist_dir``) then downloads, prepares and
reads MNIST into a fresh data dir, exactly as it does for a user with the
internet. The TFDS work runs in child processes (so TensorFlow never loads into
the test process) that refuse every connection and name lookup beyond the
loopback addresses. Run this file as a script only through these tests.
"""

import contextlib
import functools
import gzip
import http.server
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from jaxstyle import data

_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CHILD_TIMEOUT_S = 900
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- the network guard (installed in the child processes) ----------------------------------------

def _is_loopback(host) -> bool:
  if isinstance(host, bytes):
    host = host.decode("ascii", "replace")
  host = str(host)
  if host == "localhost":
    return True
  try:
    return ipaddress.ip_address(host.split("%")[0]).is_loopback
  except ValueError:
    return False


def _install_loopback_guard(blocked: list[str]) -> None:
  """Makes every Python-level connection or lookup beyond loopback fail (and records it)."""

  def refuse(what):
    blocked.append(what)
    raise ConnectionRefusedError(f"test network guard: {what} is not a loopback address")

  def check(address):
    if isinstance(address, tuple) and not _is_loopback(address[0]):  # AF_UNIX paths pass
      refuse(repr(address))

  real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
  real_sendto, real_getaddrinfo = socket.socket.sendto, socket.getaddrinfo

  def connect(self, address):
    check(address)
    return real_connect(self, address)

  def connect_ex(self, address):
    check(address)
    return real_connect_ex(self, address)

  def sendto(self, payload, *args):
    check(args[-1])
    return real_sendto(self, payload, *args)

  def getaddrinfo(host, *args, **kwargs):
    if host is not None and not _is_loopback(host):
      blocked.append(f"lookup {host!r}")
      raise socket.gaierror(socket.EAI_NONAME, f"test network guard: lookup of {host!r} refused")
    return real_getaddrinfo(host, *args, **kwargs)

  socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
  socket.socket.sendto, socket.getaddrinfo = sendto, getaddrinfo


def _child_main(splits: str, url: str, data_dir: str, out: str) -> None:
  """Loads MNIST ``splits`` (comma-separated) through TFDS into ``out``.npz; reports to ``out``.json."""
  blocked: list[str] = []
  report = {"blocked": blocked, "error": None}
  try:
    _install_loopback_guard(blocked)
    from tensorflow_datasets.image_classification import mnist as tfds_mnist  # pylint: disable=g-import-not-at-top
    tfds_mnist.MNIST.URL = url
    arrays = {}
    for split in splits.split(","):
      arrays[f"{split}_images"], arrays[f"{split}_labels"] = data.load_mnist(
          split, tfds_data_dir=data_dir)
    np.savez(out + ".npz", **arrays)
  except data.DataError as e:
    report["error"] = str(e)
  finally:
    report["tensorflow_loaded"] = "tensorflow" in sys.modules
    with open(out + ".json", "w") as f:
      json.dump(report, f)


# --- helpers of the tests ------------------------------------------------------------------------

@contextlib.contextmanager
def _serve(directory: str):
  """An HTTP server for ``directory`` on 127.0.0.1 (ephemeral port); yields its base URL."""

  class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
      pass

  server = http.server.ThreadingHTTPServer(
      ("127.0.0.1", 0), functools.partial(QuietHandler, directory=directory))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{server.server_address[1]}/"
  finally:
    server.shutdown()
    server.server_close()
    thread.join()


def _site_without_tensorflow(directory) -> str:
  """A copy (by symlinks) of this environment's site-packages without TensorFlow."""
  site_dir = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
  os.makedirs(directory)
  for entry in os.listdir(site_dir):
    if entry != "tensorflow" and not entry.startswith(("tensorflow-", "tensorflow_cpu-")):
      os.symlink(os.path.join(site_dir, entry), os.path.join(directory, entry))
  return str(directory)


def _run_child(splits: str, url: str, data_dir: str, out: str, without_tensorflow=False) -> dict:
  """Runs ``_child_main`` in a fresh interpreter (optionally one that has no TensorFlow)."""
  env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "TFDS_DATA_DIR"}
  env.update(NO_PROXY="127.0.0.1,localhost", HOME=os.path.dirname(out), TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=_ROOT)
  args = [os.path.abspath(__file__), splits, url, data_dir, out]
  if without_tensorflow:  # no site-packages but the copy without TensorFlow
    boot = ("import runpy, site, sys; site.addsitedir(sys.argv[1]); sys.argv = sys.argv[2:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    args = ["-S", "-c", boot, _site_without_tensorflow(out + "_site")] + args
  proc = subprocess.run([sys.executable] + args, env=env, capture_output=True, text=True,
                        timeout=_CHILD_TIMEOUT_S)
  assert proc.returncode == 0, f"child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
  with open(out + ".json") as f:
    report = json.load(f)
  assert report["blocked"] == [], f"the child tried to leave loopback: {report['blocked']}"
  return report


def _example_rows(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Each (image, label) example as one opaque value, sorted: equal iff the same multiset."""
  rows = np.concatenate([images.reshape(len(images), -1), labels[:, None].astype(np.uint8)], 1)
  return np.sort(np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel())


@pytest.fixture(scope="module")
def mnist_server(shared_data, tmp_path_factory):
  """Base URL of a local server holding the four MNIST ``.gz`` files."""
  source = os.path.join(shared_data, "mnist")
  served = tmp_path_factory.mktemp("mnist_served")
  for name in _NAMES:
    if os.path.exists(os.path.join(source, name + ".gz")):
      shutil.copyfile(os.path.join(source, name + ".gz"), served / (name + ".gz"))
    else:
      with open(os.path.join(source, name), "rb") as raw, \
          gzip.open(served / (name + ".gz"), "wb", compresslevel=1) as packed:
        shutil.copyfileobj(raw, packed)
  with _serve(str(served)) as url:
    yield url


# --- tests ---------------------------------------------------------------------------------------

def test_guard_refuses_everything_beyond_loopback(monkeypatch):
  assert all(_is_loopback(h) for h in ("127.0.0.1", "127.5.0.9", "::1", "localhost", b"127.0.0.1"))
  assert not any(_is_loopback(h) for h in ("192.0.2.1", "10.0.0.1", "::ffff:192.0.2.1",
                                            "storage.googleapis.com", ""))
  # The guard wraps stand-ins here, so nothing is sent even if it let a call through.
  reached = []
  monkeypatch.setattr(socket.socket, "connect", lambda self, a: reached.append(a))
  monkeypatch.setattr(socket.socket, "connect_ex", lambda self, a: reached.append(a))
  monkeypatch.setattr(socket.socket, "sendto", lambda self, p, *a: reached.append(a[-1]))
  monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: reached.append(host))
  blocked = []
  _install_loopback_guard(blocked)
  with socket.socket() as s:
    for call in (s.connect, s.connect_ex, lambda a: s.sendto(b"x", a)):
      with pytest.raises(ConnectionRefusedError):
        call(("192.0.2.1", 80))
      call(("127.0.0.1", 80))
  with pytest.raises(socket.gaierror):
    socket.getaddrinfo("storage.googleapis.com", 443)
  socket.getaddrinfo("localhost", 80)
  assert reached == [("127.0.0.1", 80)] * 3 + ["localhost"]
  assert len(blocked) == 4


@pytest.fixture
def loopback_only(monkeypatch):
  """The network guard in this process, undone after the test."""
  for name in ("connect", "connect_ex", "sendto"):
    monkeypatch.setattr(socket.socket, name, getattr(socket.socket, name))
  monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)
  blocked = []
  _install_loopback_guard(blocked)
  yield blocked
  assert blocked == [], f"tried to leave loopback: {blocked}"


def test_unknown_tfds_dataset_is_a_data_error(loopback_only, tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(data.DataError, match="TFDS has no dataset 'no_such_dataset'"):
    data.tfds_source.prepare("no_such_dataset", str(tmp_path))


def test_dataset_prepared_as_tfrecord_names_the_fix(monkeypatch):
  class TFRecordBuilder:  # what TFDS returns for a dataset that tfds.load prepared earlier
    data_dir = "/data/tfds/mnist/3.0.1"

    class info:  # pylint: disable=invalid-name
      class file_format:  # pylint: disable=invalid-name
        value = "tfrecord"

    def as_data_source(self, split):
      raise NotImplementedError(f"Random access data source for {split} is not supported")

  monkeypatch.setattr(data.tfds_source, "prepare", lambda name, data_dir: TFRecordBuilder())
  with pytest.raises(data.DataError, match=r"prepared as tfrecord.*delete /data/tfds/mnist/3.0.1"):
    data.tfds_source.data_source("mnist", "train")


def test_read_records_batches_and_falls_back():
  class Source(list):
    calls = 0

    def __getitems__(self, keys):
      Source.calls += 1
      return [self[k] for k in keys]

  class BrokenSource(list):  # like the source under tfds.testing.mock_data
    def __getitems__(self):
      return []

  assert list(data.tfds_source.read_records(Source(range(10)), chunk_size=4)) == list(range(10))
  assert Source.calls == 3
  assert list(data.tfds_source.read_records(BrokenSource(range(5)), chunk_size=2)) == list(range(5))


@pytest.mark.slow
def test_tfds_mnist_end_to_end_matches_idx_files(mnist_server, shared_data, tmp_path):
  data_dir = str(tmp_path / "tfds")  # fresh: nothing prepared, nothing downloaded
  report = _run_child("train,test", mnist_server, data_dir, str(tmp_path / "load"))
  assert report["error"] is None, report["error"]
  got = np.load(str(tmp_path / "load.npz"))
  for split, n in (("train", 60000), ("test", 10000)):
    images, labels = got[f"{split}_images"], got[f"{split}_labels"]
    idx_images, idx_labels = data.load_mnist_idx(os.path.join(shared_data, "mnist"), split)
    assert images.shape == idx_images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == idx_labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels, minlength=10),
                                  np.bincount(idx_labels, minlength=10))
    assert (_example_rows(images, labels) == _example_rows(idx_images, idx_labels)).all()

  # Reading the prepared dataset needs no TensorFlow (and no server: nothing is downloaded again).
  report = _run_child("test", "http://127.0.0.1:9/", data_dir, str(tmp_path / "read"),
                      without_tensorflow=True)
  assert report["error"] is None and not report["tensorflow_loaded"], report["error"]
  again = np.load(str(tmp_path / "read.npz"))
  np.testing.assert_array_equal(again["test_images"], got["test_images"])
  np.testing.assert_array_equal(again["test_labels"], got["test_labels"])


def test_tfds_preparation_without_tensorflow_names_the_extra(mnist_server, tmp_path):
  report = _run_child("test", mnist_server, str(tmp_path / "tfds"), str(tmp_path / "prep"),
                      without_tensorflow=True)
  assert report["error"] is not None, "preparing MNIST without TensorFlow did not fail"
  assert "TensorFlow" in report["error"] and '.[tfds]' in report["error"], report["error"]
  assert "--mnist_dir" in report["error"], report["error"]


if __name__ == "__main__":
  _child_main(*sys.argv[1:5])
