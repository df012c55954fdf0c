"""Tests of jaxstyle.data.mnist: MNIST from IDX files and TFDS (mocked)."""

import os

import numpy as np
import pytest

from jaxstyle import data


@pytest.fixture(scope="module")
def mnist_dir(shared_data):
  return os.path.join(shared_data, "mnist")


def test_load_mnist_idx_real_files(mnist_dir):
  train_x, train_y = data.load_mnist("train", mnist_dir)
  test_x, test_y = data.load_mnist("test", mnist_dir)
  assert train_x.shape == (60000, 28, 28) and train_x.dtype == np.uint8
  assert test_x.shape == (10000, 28, 28) and test_y.dtype == np.int32
  assert set(np.unique(train_y)) == set(range(10))
  # MNIST digits: dark background, bright strokes, every image non-empty.
  assert train_x[:, 0, 0].max() == 0 and (train_x.reshape(60000, -1).max(1) > 128).all()


def test_missing_mnist_files_raise_data_error(tmp_path):
  with pytest.raises(data.DataError, match="not found"):
    data.load_mnist("train", str(tmp_path))
  with pytest.raises(data.DataError, match="split"):
    data.load_mnist("validation", str(tmp_path))


def test_load_mnist_tfds_under_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=12):
    images, labels = data.load_mnist("train")  # no mnist_dir: the TFDS source
    source = tfds.data_source("mnist", split="train")
    expect_x = np.stack([np.asarray(source[i]["image"])[..., 0] for i in range(len(source))])
    expect_y = np.array([int(source[i]["label"]) for i in range(len(source))])
  assert images.shape == (12, 28, 28) and images.dtype == np.uint8
  assert labels.dtype == np.int32 and labels.shape == (12,)
  np.testing.assert_array_equal(images, expect_x)
  np.testing.assert_array_equal(labels, expect_y)
