"""Tests of jaxstyle.data.folders: seeded photo crops from a folder, style images, bad files."""

import csv
import os
import shutil

import numpy as np
import pytest

from jaxstyle import images as imlib
from jaxstyle.data import folders
from jaxstyle.errors import ConfigError, DataError

CROP = 32


@pytest.fixture(scope="module")
def val_dir(shared_data):
  return os.path.join(shared_data, "photos", "bsds500", "val")


@pytest.fixture(scope="module")
def styles_dir(shared_data):
  return os.path.join(shared_data, "styles")


@pytest.fixture(scope="module")
def crops(val_dir):
  return folders.PhotoCrops(val_dir, CROP, 8, seed=5)


def test_list_images(val_dir, tmp_path):
  paths = folders.list_images(val_dir)
  assert len(paths) == 100 and paths == sorted(paths)
  assert all(p.endswith(".jpg") and os.path.dirname(p) == val_dir for p in paths)
  with pytest.raises(DataError, match="no such directory"):
    folders.list_images(tmp_path / "missing")
  (tmp_path / "notes.txt").write_text("no images here")
  with pytest.raises(DataError, match=f"{tmp_path}: no image files"):
    folders.list_images(tmp_path)


def test_batches_are_seeded_and_in_range(crops, val_dir):
  assert crops.num_photos == 100 and crops.errors == [] and crops.steps_per_epoch == 12
  b = crops.batch(3)
  assert b.shape == (8, CROP, CROP, 3) and b.dtype == np.float32
  assert 0.0 <= b.min() and b.max() <= 1.0 and b.std() > 0.05
  np.testing.assert_array_equal(np.round(b * 255) / 255, b)  # uint8 values / 255
  again = folders.PhotoCrops(val_dir, CROP, 8, seed=5)
  np.testing.assert_array_equal(again.batch(3), b)  # same seed -> same batch
  np.testing.assert_array_equal(crops.batch(3), b)  # random access: no hidden iterator state
  assert not np.array_equal(crops.batch(4), b)
  other = folders.PhotoCrops(val_dir, CROP, 8, seed=6)
  assert not np.array_equal(other.batch(3), b)


def test_each_epoch_uses_each_photo_at_most_once(crops):
  for epoch in range(2):
    seen = np.concatenate([crops.global_crops(epoch * 12 + s)[0] for s in range(12)])
    assert len(set(seen.tolist())) == 96  # 12 full batches of 8; 4 photos dropped per epoch
  assert not np.array_equal(crops.global_crops(0)[0], crops.global_crops(12)[0])


def test_crops_are_regions_of_the_resized_photos(crops):
  step = 7
  idx, offsets, flips = crops.global_crops(step)
  batch = crops.batch(step)
  assert crops.resize_to == 48 and flips.any() and not flips.all()
  for k in range(len(idx)):
    photo = imlib.to_uint8(imlib.load_image(crops.paths[idx[k]], 48, side="shorter"))
    assert min(photo.shape[:2]) == 48
    top, left = offsets[k]
    want = photo[top:top + CROP, left:left + CROP]
    want = want[:, ::-1] if flips[k] else want
    np.testing.assert_array_equal(np.round(batch[k] * 255).astype(np.uint8), want)


def test_processes_together_give_the_one_process_batch(val_dir):
  one = folders.PhotoCrops(val_dir, CROP, 8, seed=1, flip=False)
  parts = [folders.PhotoCrops(val_dir, CROP, 8, seed=1, flip=False, process_index=i, process_count=2)
           for i in range(2)]
  assert parts[0].local_batch_size == 4
  for step in (0, 5, 13):
    np.testing.assert_array_equal(np.concatenate([p.batch(step) for p in parts]), one.batch(step))
  with pytest.raises(DataError, match="not divisible"):
    folders.PhotoCrops(val_dir, CROP, 9, seed=1, process_count=2)


def test_settings_are_checked(val_dir):
  with pytest.raises(ConfigError, match="resize_to"):
    folders.PhotoCrops(val_dir, CROP, 8, seed=0, resize_to=CROP - 1)
  with pytest.raises(ConfigError, match="crop size"):
    folders.PhotoCrops(val_dir, 0, 8, seed=0)
  with pytest.raises(DataError, match="batch size 101"):
    folders.PhotoCrops(val_dir, CROP, 101, seed=0)


def test_corrupt_files_are_skipped_and_reported(val_dir, tmp_path):
  good = folders.list_images(val_dir)[:3]
  for p in good:
    shutil.copy(p, tmp_path)
  data = open(good[0], "rb").read()
  (tmp_path / "truncated.jpg").write_bytes(data[:len(data) // 3])
  (tmp_path / "fake.png").write_text("not a picture")
  (tmp_path / "empty.jpg").write_bytes(b"")
  c = folders.PhotoCrops(str(tmp_path), CROP, 2, seed=0)
  assert c.num_photos == 3 and len(c.paths) == 3
  assert sorted(os.path.basename(p) for p, _ in c.errors) == ["empty.jpg", "fake.png", "truncated.jpg"]
  assert all(reason.startswith(p) for p, reason in c.errors)  # each reason names its file
  assert c.batch(0).shape == (2, CROP, CROP, 3)
  for p in good:
    os.remove(tmp_path / os.path.basename(p))
  with pytest.raises(DataError, match=f"{tmp_path}: no usable photo among 3 files"):
    folders.PhotoCrops(str(tmp_path), CROP, 1, seed=0)


def test_load_styles_from_folder_files_and_csv(styles_dir, shared_data, tmp_path):
  names, ims = folders.load_styles(styles_dir, 40)
  assert len(names) == 14 and "hokusai_great_wave" in names and "picabia_udnie" in names
  assert all(im.dtype == np.float32 and min(im.shape[:2]) == 40 and im.shape[2] == 3 for im in ims)
  names_sq, sq = folders.load_styles(styles_dir, 40, square=True)
  assert names_sq == names and sq.shape == (14, 40, 40, 3) and sq.dtype == np.float32
  np.testing.assert_array_equal(sq[0], imlib.center_crop(ims[0], 40))
  files = [os.path.join(styles_dir, f) for f in ("picabia_udnie.jpg", "hokusai_great_wave.jpg")]
  assert folders.load_styles(files, 32)[0] == ["picabia_udnie", "hokusai_great_wave"]  # order kept
  paintings = os.path.join(shared_data, "paintings", "paintings.csv")
  with open(paintings, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  subset = tmp_path / "subset.csv"  # the real columns, three real rows, paths made absolute
  with open(subset, "w", newline="", encoding="utf-8") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows[:3]:
      w.writerow({**r, "file": os.path.join(os.path.dirname(paintings), r["file"])})
  names_csv, ims_csv = folders.load_styles(str(subset), 32)
  assert names_csv == [os.path.splitext(r["file"])[0] for r in rows[:3]] and len(ims_csv) == 3
  assert folders.style_files(paintings) == [os.path.join(os.path.dirname(paintings), r["file"])
                                             for r in rows]
  assert all(os.path.exists(p) for p in folders.style_files(paintings))


def test_bad_styles_are_errors(styles_dir, tmp_path):
  bad_csv = tmp_path / "bad.csv"
  bad_csv.write_text("name,artist\nx.jpg,someone\n")
  with pytest.raises(DataError, match="no 'file' or 'path' column.*columns: name, artist"):
    folders.load_styles(str(bad_csv), 32)
  broken = tmp_path / "broken.jpg"
  broken.write_text("not a picture")
  with pytest.raises(DataError, match="1 style image.*broken.jpg"):
    folders.load_styles([os.path.join(styles_dir, "picabia_udnie.jpg"), str(broken)], 32)
  twin = tmp_path / "picabia_udnie.png"
  shutil.copy(os.path.join(styles_dir, "picabia_udnie.jpg"), twin)
  with pytest.raises(DataError, match="two styles are named 'picabia_udnie'"):
    folders.load_styles([styles_dir, str(twin)], 32)
  with pytest.raises(DataError, match="missing.jpg: no such file"):
    folders.load_styles(str(tmp_path / "missing.jpg"), 32)
  with pytest.raises(DataError, match="names no style image"):
    folders.load_styles([], 32)


def test_center_crops_take_the_first_readable_photos(val_dir, tmp_path):
  paths = folders.list_images(val_dir)[:3]
  for i, p in enumerate(paths):
    shutil.copy(p, tmp_path / f"{i}_{os.path.basename(p)}")
  (tmp_path / "0a_broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
  crops, skipped = folders.center_crops(tmp_path, 2, 40)
  assert crops.shape == (2, 40, 40, 3) and crops.dtype == np.float32
  assert [os.path.basename(p) for p, _ in skipped] == ["0a_broken.jpg"]
  for crop, p in zip(crops, sorted(os.listdir(tmp_path))[::2]):  # 0_…, then 1_… (0a_broken skipped)
    want = imlib.center_crop(imlib.load_image(str(tmp_path / p), 40, side="shorter"), 40)
    np.testing.assert_array_equal(crop, want)
  crops, _ = folders.center_crops(tmp_path, 10, 40)
  assert len(crops) == 3
