"""Tests of jaxstyle.images.io: decoding rules and errors over a corpus of odd and broken files."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from jaxstyle import images
from jaxstyle.errors import ConfigError, JaxstyleError
from jaxstyle.images import ImageError

EPS = 1e-6


def _rgb_pattern(h, w, seed=0):
  return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _save_pil(path, im, **kw):
  im.save(path, **kw)
  return str(path)


def _png_bytes(arr):
  buf = io.BytesIO()
  Image.fromarray(arr).save(buf, format="PNG")
  return buf.getvalue()


def _png_chunk(kind, body):
  return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_16bit_rgb(arr):
  """A 16-bit-per-channel RGB PNG (Pillow cannot write these), filter 0 rows."""
  h, w, _ = arr.shape
  raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in arr)
  return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
          + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


def _assert_image(a, shape=None):
  assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 3 and a.shape[-1] == 3
  assert np.all(a >= 0.0) and np.all(a <= 1.0)
  if shape is not None:
    assert a.shape == shape


# --------------------------------------------------------------------------- #
# Colour modes
# --------------------------------------------------------------------------- #


def test_rgb_png_exact(tmp_path):
  arr = _rgb_pattern(5, 7)
  p = _save_pil(tmp_path / "rgb.png", Image.fromarray(arr))
  a = images.load_image(p)
  _assert_image(a, (5, 7, 3))
  np.testing.assert_allclose(a, arr / 255.0, atol=EPS)


def test_grayscale_l_and_bilevel(tmp_path):
  g = np.array([[0, 64, 128], [200, 254, 255]], np.uint8)
  a = images.load_image(_save_pil(tmp_path / "g.png", Image.fromarray(g)))
  _assert_image(a, (2, 3, 3))
  for c in range(3):
    np.testing.assert_allclose(a[:, :, c], g / 255.0, atol=EPS)
  bits = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1")
  b = images.load_image(_save_pil(tmp_path / "b.png", bits))
  np.testing.assert_array_equal(b[:, :, 1], [[0.0, 1.0], [1.0, 0.0]])


def test_16bit_grayscale_png_keeps_precision(tmp_path):
  vals = np.array([[0, 1, 1000, 1001], [32768, 40000, 65534, 65535]], np.uint16)
  p = _save_pil(tmp_path / "g16.png", Image.fromarray(vals))
  assert Image.open(p).mode.startswith("I;16")
  a = images.load_image(p)
  _assert_image(a, (2, 4, 3))
  ref = vals.astype(np.float64) / 65535.0
  np.testing.assert_allclose(a[:, :, 0], ref, rtol=1e-6, atol=1e-9)
  # Neighbouring 16-bit codes stay distinct (8-bit decoding would merge them).
  assert a[0, 1, 0] > a[0, 0, 0] and a[0, 3, 0] > a[0, 2, 0]
  assert len(np.unique(a[:, :, 0])) == vals.size


def test_16bit_rgb_png_loads_to_8bit_precision(tmp_path):
  vals = np.random.default_rng(3).integers(0, 65536, size=(4, 5, 3)).astype(np.uint16)
  vals[0, 0] = (0, 65535, 257)
  p = tmp_path / "rgb16.png"
  p.write_bytes(_png_16bit_rgb(vals))
  a = images.load_image(p)
  _assert_image(a, (4, 5, 3))
  # Documented limitation: Pillow keeps 8 bits per colour channel.
  assert np.max(np.abs(a - vals / 65535.0)) <= 1.0 / 255 + 1e-6
  np.testing.assert_allclose(a[0, 0], [0.0, 1.0, 1.0 / 255], atol=1e-6)


def test_interlaced_png_and_progressive_jpeg(tmp_path):
  arr = _rgb_pattern(33, 47)
  png = images.load_image(_save_pil(tmp_path / "i.png", Image.fromarray(arr), interlace=1))
  np.testing.assert_allclose(png, arr / 255.0, atol=EPS)
  smooth = np.repeat(np.linspace(0, 255, 47)[None, :, None], 33, 0).repeat(3, 2).astype(np.uint8)
  jpg = images.load_image(_save_pil(tmp_path / "p.jpg", Image.fromarray(smooth), quality=95,
                                    progressive=True))
  assert np.mean(np.abs(jpg - smooth / 255.0)) < 0.01


def test_32bit_int_and_float_tiff(tmp_path):
  ints = np.array([[0, 300, 65535, 70000, -5]], np.int32)
  a = images.load_image(_save_pil(tmp_path / "i.tif", Image.fromarray(ints)))
  np.testing.assert_allclose(a[0, :, 0], np.clip(ints[0], 0, 65535) / 65535.0, rtol=1e-6)
  f = Image.new("F", (3, 1))
  for x, v in enumerate((0.25, 1.5, -0.5)):
    f.putpixel((x, 0), v)
  b = images.load_image(_save_pil(tmp_path / "f.tif", f))
  np.testing.assert_allclose(b[0, :, 2], [0.25, 1.0, 0.0], atol=EPS)


def test_rgba_composited_over_white_exact(tmp_path):
  px = np.array([[[255, 0, 0, 128], [0, 0, 255, 0]],
                 [[10, 20, 30, 255], [100, 200, 50, 51]]], np.uint8)
  a = images.load_image(_save_pil(tmp_path / "rgba.png", Image.fromarray(px, "RGBA")))
  _assert_image(a, (2, 2, 3))
  rgb = px[..., :3].astype(np.float64) / 255.0
  alpha = px[..., 3:].astype(np.float64) / 255.0
  ref = rgb * alpha + (1.0 - alpha)
  np.testing.assert_allclose(a, ref, atol=1e-6)
  np.testing.assert_allclose(a[0, 0], [1.0, 1 - 128 / 255, 1 - 128 / 255], atol=1e-6)
  np.testing.assert_array_equal(a[0, 1], [1.0, 1.0, 1.0])        # fully transparent -> white
  np.testing.assert_allclose(a[1, 0], [10 / 255, 20 / 255, 30 / 255], atol=1e-6)  # opaque kept


def test_la_composited_over_white(tmp_path):
  la = np.array([[[0, 0], [0, 255], [100, 102]]], np.uint8)
  a = images.load_image(_save_pil(tmp_path / "la.png", Image.fromarray(la, "LA")))
  np.testing.assert_allclose(a[0, :, 0], [1.0, 0.0, 100 / 255 * 0.4 + 0.6], atol=1e-6)


def test_palette_with_transparency(tmp_path):
  im = Image.new("P", (3, 2))
  im.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
  idx = np.array([[0, 1, 2], [2, 0, 1]], np.uint8)
  im.putdata(idx.ravel().tolist())
  p = _save_pil(tmp_path / "pal.png", im, transparency=0)
  assert Image.open(p).mode == "P"
  a = images.load_image(p)
  colours = {0: [1.0, 1.0, 1.0], 1: [1.0, 0.0, 0.0], 2: [0.0, 0.0, 1.0]}  # index 0 transparent
  ref = np.array([[colours[i] for i in row] for row in idx])
  np.testing.assert_allclose(a, ref, atol=EPS)
  # Same palette without transparency: index 0 is black.
  b = images.load_image(_save_pil(tmp_path / "pal_opaque.png", im))
  np.testing.assert_allclose(b[0, 0], [0.0, 0.0, 0.0], atol=EPS)


def test_png_colour_key_transparency(tmp_path):
  arr = np.array([[[255, 0, 0], [0, 128, 0]]], np.uint8)
  p = _save_pil(tmp_path / "key.png", Image.fromarray(arr), transparency=(255, 0, 0))
  a = images.load_image(p)
  np.testing.assert_allclose(a[0], [[1.0, 1.0, 1.0], [0.0, 128 / 255, 0.0]], atol=EPS)
  g = np.array([[7, 200]], np.uint8)
  b = images.load_image(_save_pil(tmp_path / "gkey.png", Image.fromarray(g), transparency=7))
  np.testing.assert_allclose(b[0, :, 0], [1.0, 200 / 255], atol=EPS)


def test_animated_gif_gives_first_frame(tmp_path):
  frames = [Image.new("RGB", (4, 3), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
  p = _save_pil(tmp_path / "anim.gif", frames[0], save_all=True, append_images=frames[1:],
                duration=50, loop=0)
  assert Image.open(p).n_frames == 3
  a = images.load_image(p)
  _assert_image(a, (3, 4, 3))
  np.testing.assert_allclose(a, np.broadcast_to([1.0, 0.0, 0.0], a.shape), atol=EPS)


def test_cmyk_jpeg_colour_roughly_preserved(tmp_path):
  colours = [(200, 30, 60), (20, 160, 220), (240, 240, 240), (30, 30, 30)]
  arr = np.zeros((16, 64, 3), np.uint8)
  for k, c in enumerate(colours):
    arr[:, 16 * k:16 * (k + 1)] = c
  p = _save_pil(tmp_path / "cmyk.jpg", Image.fromarray(arr).convert("CMYK"), quality=95)
  assert Image.open(p).mode == "CMYK"
  a = images.load_image(p)
  _assert_image(a, (16, 64, 3))
  for k, c in enumerate(colours):
    block = a[4:12, 16 * k + 4:16 * k + 12].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(block, np.array(c) / 255.0, atol=0.05)


# The displayed image for each EXIF orientation, as NumPy operations on the stored [H, W, C].
_ORIENT = {
    1: lambda s: s,
    2: lambda s: s[:, ::-1],
    3: lambda s: s[::-1, ::-1],
    4: lambda s: s[::-1, :],
    5: lambda s: s.transpose(1, 0, 2),
    6: lambda s: np.rot90(s, k=-1),           # rotate 90 degrees clockwise
    7: lambda s: s[::-1, ::-1].transpose(1, 0, 2),
    8: lambda s: np.rot90(s, k=1),            # rotate 90 degrees counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(_ORIENT))
def test_exif_orientation_png(tmp_path, orientation):
  stored = _rgb_pattern(2, 3, seed=orientation)
  exif = Image.Exif()
  exif[0x0112] = orientation
  p = _save_pil(tmp_path / f"o{orientation}.png", Image.fromarray(stored), exif=exif)
  a = images.load_image(p)
  ref = _ORIENT[orientation](stored) / 255.0
  assert a.shape == ref.shape
  np.testing.assert_allclose(a, ref, atol=EPS)


def test_exif_orientation_6_jpeg_pixel_positions(tmp_path):
  stored = np.zeros((40, 80, 3), np.uint8)
  stored[:, :40] = (255, 0, 0)   # left half red
  stored[:, 40:] = (0, 0, 255)   # right half blue
  exif = Image.Exif()
  exif[0x0112] = 6
  a = images.load_image(_save_pil(tmp_path / "o6.jpg", Image.fromarray(stored), exif=exif,
                                  quality=95))
  assert a.shape == (80, 40, 3)
  # After a clockwise quarter turn the stored left half is on top.
  np.testing.assert_allclose(a[10, 20], [1, 0, 0], atol=0.06)
  np.testing.assert_allclose(a[70, 20], [0, 0, 1], atol=0.06)


# --------------------------------------------------------------------------- #
# Broken files
# --------------------------------------------------------------------------- #


def _expect_error(path, *words, **kw):
  with pytest.raises(ImageError) as info:
    images.load_image(path, **kw)
  msg = str(info.value)
  assert str(path) in msg, msg
  for w in words:
    assert w.lower() in msg.lower(), msg
  assert isinstance(info.value, JaxstyleError)
  assert info.value.path == str(path)
  return msg


def test_truncated_png(tmp_path):
  data = _png_bytes(_rgb_pattern(64, 64))
  p = tmp_path / "trunc.png"
  p.write_bytes(data[:len(data) // 2])
  _expect_error(p, "truncated")


def test_truncated_jpeg(tmp_path):
  buf = io.BytesIO()
  Image.fromarray(_rgb_pattern(64, 64)).save(buf, format="JPEG", quality=90)
  p = tmp_path / "trunc.jpg"
  p.write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
  _expect_error(p, "truncated")


@pytest.mark.parametrize("fmt,ext,kw", [
    ("PNG", "png", {"interlace": 1}), ("JPEG", "jpg", {"progressive": True}), ("GIF", "gif", {}),
    ("BMP", "bmp", {}), ("TIFF", "tif", {}), ("TIFF", "tiff", {"compression": "tiff_lzw"}),
    ("WEBP", "webp", {"lossless": True}), ("WEBP", "webp", {"quality": 80})])
@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_files_of_every_format(tmp_path, fmt, ext, kw, fraction):
  buf = io.BytesIO()
  Image.fromarray(_rgb_pattern(40, 56)).save(buf, format=fmt, **kw)
  data = buf.getvalue()
  p = tmp_path / f"cut.{ext}"
  p.write_bytes(data[:int(len(data) * fraction)])
  _expect_error(p, "truncated")


def test_corrupted_png_crc(tmp_path):
  data = bytearray(_png_bytes(_rgb_pattern(16, 16)))
  data[len(data) // 2] ^= 0xFF                      # flip a byte inside the IDAT chunk
  p = tmp_path / "flipped.png"
  p.write_bytes(bytes(data))
  _expect_error(p, "corrupt")


def test_png_header_only(tmp_path):
  p = tmp_path / "head.png"
  p.write_bytes(_png_bytes(_rgb_pattern(8, 8))[:12])
  _expect_error(p, "png", "corrupt or truncated")


def test_zero_byte_file(tmp_path):
  p = tmp_path / "empty.jpg"
  p.write_bytes(b"")
  _expect_error(p, "empty", "0 bytes")


def test_text_file_with_png_extension(tmp_path):
  p = tmp_path / "notes.png"
  p.write_text("this is not a picture\n")
  _expect_error(p, "not an image", "text")


def test_unsupported_formats(tmp_path):
  svg = tmp_path / "logo.svg"
  svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>')
  _expect_error(svg, "svg", "unsupported")
  blob = tmp_path / "photo.heic"
  blob.write_bytes(bytes(range(256)) * 4)
  _expect_error(blob, "not an image", "unsupported")
  lab = tmp_path / "lab.tif"
  Image.new("LAB", (4, 4), (50, 10, 10)).save(lab)
  _expect_error(lab, "unsupported colour mode", "LAB")


def test_image_error_pickles():
  import pickle
  err = ImageError("/x/y.png", "file is empty (0 bytes)", "remove it")
  back = pickle.loads(pickle.dumps(err))
  assert type(back) is ImageError
  assert str(back) == str(err) == "/x/y.png: file is empty (0 bytes); remove it"
  assert (back.path, back.cause, back.advice) == (err.path, err.cause, err.advice)


def test_missing_file_and_directory(tmp_path):
  _expect_error(tmp_path / "nope.png", "no such file")
  _expect_error(tmp_path, "directory")


def test_bad_size_arguments(tmp_path):
  p = _save_pil(tmp_path / "x.png", Image.fromarray(_rgb_pattern(4, 4)))
  for bad in (0, -3, 2.5, True):
    with pytest.raises(ValueError, match="size must be a positive integer"):
      images.load_image(p, bad)
  with pytest.raises(ConfigError, match="max_pixels"):
    images.load_image(p, max_pixels=0)


def test_max_pixels_limit(tmp_path):
  p = _save_pil(tmp_path / "big.png", Image.fromarray(_rgb_pattern(100, 100)))
  _expect_error(p, "10000 pixels", "max_pixels", max_pixels=5000)
  assert images.load_image(p, max_pixels=10000).shape == (100, 100, 3)


def test_decompression_bomb_header(tmp_path):
  # A valid PNG header that claims 30000 x 30000 pixels, with no real data behind it.
  ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
  p = tmp_path / "bomb.png"
  p.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b""))
  _expect_error(p, "pixels", "max_pixels")


def test_max_pixels_above_pillow_guard_lifts_it_temporarily(tmp_path, monkeypatch):
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
  p = _save_pil(tmp_path / "img.png", Image.fromarray(_rgb_pattern(100, 100)))
  _expect_error(p, "max_pixels")                  # default: Pillow's (patched) limit applies
  a = images.load_image(p, max_pixels=20000)     # explicit, above 2x Pillow's limit
  assert a.shape == (100, 100, 3)
  assert Image.MAX_IMAGE_PIXELS == 1000           # restored


# --------------------------------------------------------------------------- #
# Batches and folders
# --------------------------------------------------------------------------- #


def _corpus(tmp_path):
  good = []
  for k, (h, w) in enumerate([(30, 60), (20, 40), (50, 100)]):
    good.append(_save_pil(tmp_path / f"good{k}.png", Image.fromarray(_rgb_pattern(h, w, k))))
  (tmp_path / "zero.png").write_bytes(b"")
  (tmp_path / "text.jpg").write_text("hello")
  data = _png_bytes(_rgb_pattern(64, 64))
  (tmp_path / "trunc.png").write_bytes(data[:len(data) // 2])
  bad = [str(tmp_path / n) for n in ("zero.png", "text.jpg", "trunc.png")]
  order = [good[0], bad[0], good[1], bad[1], bad[2], good[2]]
  return good, bad, order


def test_load_batch_reports_every_bad_file_and_keeps_order(tmp_path):
  good, bad, order = _corpus(tmp_path)
  batch, errors = images.load_batch(order, size=32)
  assert isinstance(batch, np.ndarray) and batch.shape == (3, 16, 32, 3)
  assert batch.dtype == np.float32
  for k, path in enumerate(good):
    np.testing.assert_array_equal(batch[k], images.load_image(path, 32))
  assert [p for p, _ in errors] == bad
  for (path, msg), word in zip(errors, ("empty", "not an image", "truncated")):
    assert path in msg and word in msg


def test_load_batch_mixed_shapes_returns_list(tmp_path):
  a = _save_pil(tmp_path / "a.png", Image.fromarray(_rgb_pattern(10, 20)))
  b = _save_pil(tmp_path / "b.png", Image.fromarray(_rgb_pattern(20, 10)))
  batch, errors = images.load_batch([a, b])
  assert errors == [] and isinstance(batch, list)
  assert [x.shape for x in batch] == [(10, 20, 3), (20, 10, 3)]
  empty, errors = images.load_batch([str(tmp_path / "missing.png")])
  assert empty.shape[0] == 0 and len(errors) == 1 and "no such file" in errors[0][1]


def test_iter_image_files(tmp_path):
  for rel in ("b.png", "a.JPG", "c.txt", ".hidden.png", "sub/d.webp", "sub/e.TIFF",
              ".git/f.png", "sub/deeper/g.bmp", "h.gif", "i.jpeg", "j.tif"):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
  rel = lambda paths: [os.path.relpath(p, tmp_path) for p in paths]
  assert rel(images.iter_image_files(tmp_path)) == [
      "a.JPG", "b.png", "h.gif", "i.jpeg", "j.tif", "sub/d.webp", "sub/deeper/g.bmp", "sub/e.TIFF"]
  assert rel(images.iter_image_files(tmp_path, recursive=False)) == [
      "a.JPG", "b.png", "h.gif", "i.jpeg", "j.tif"]
  with pytest.raises(ImageError, match="no such directory"):
    images.iter_image_files(tmp_path / "absent")


def test_load_image_size_equals_resize_of_full(tmp_path):
  arr = _rgb_pattern(60, 90)
  p = _save_pil(tmp_path / "x.jpg", Image.fromarray(arr), quality=90)
  np.testing.assert_array_equal(images.load_image(p, 30), images.resize(images.load_image(p), 30))
  assert images.load_image(p, 30, side="shorter").shape == (30, 45, 3)


# --------------------------------------------------------------------------- #
# Saving
# --------------------------------------------------------------------------- #


def test_to_uint8():
  x = np.array([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 0.5, 1.0, 2.0], np.float32)
  np.testing.assert_array_equal(images.to_uint8(x), [0, 0, 0, 1, 128, 255, 255])
  with pytest.raises(ValueError, match="NaN"):
    images.to_uint8(np.array([np.nan], np.float32))


def test_png_round_trip_within_half_level(tmp_path):
  img = np.random.default_rng(1).random((13, 17, 3)).astype(np.float32)
  p = images.save_image(tmp_path / "rt.png", img)
  back = images.load_image(p)
  assert back.shape == img.shape
  assert np.max(np.abs(back - img)) <= 0.5 / 255 + 1e-6
  gray = img[:, :, 0]
  back = images.load_image(images.save_image(tmp_path / "gray.png", gray))
  assert np.max(np.abs(back - gray[:, :, None])) <= 0.5 / 255 + 1e-6
  assert Image.open(tmp_path / "gray.png").mode == "L"


def test_jpeg_save_smooth_image(tmp_path):
  yy, xx = np.mgrid[:32, :48] / 48.0
  img = np.stack([yy, xx, 0.5 * (yy + xx)], -1).astype(np.float32)
  p = images.save_image(tmp_path / "x.JPEG", img)
  assert Image.open(p).format == "JPEG"
  back = images.load_image(p)
  assert np.mean(np.abs(back - img)) < 0.01


def test_save_rejects_unsupported_extension(tmp_path):
  img = np.zeros((4, 4, 3), np.float32)
  for name in ("x.gif", "x.bmp", "noext"):
    with pytest.raises(ImageError, match="unsupported output extension"):
      images.save_image(tmp_path / name, img)
  assert os.listdir(tmp_path) == []


def test_save_is_atomic(tmp_path, monkeypatch):
  out = tmp_path / "sub" / "res.png"
  img = np.full((6, 6, 3), 0.25, np.float32)
  images.save_image(out, img)                       # creates sub/
  assert os.listdir(tmp_path / "sub") == ["res.png"]
  old = out.read_bytes()

  real_save = Image.Image.save

  def failing_save(self, fp, *args, **kwargs):
    real_save(self, fp, *args, **kwargs)          # write real bytes to the temp file ...
    raise OSError(28, "No space left on device")  # ... then fail before the rename

  monkeypatch.setattr(Image.Image, "save", failing_save)
  with pytest.raises(ImageError, match="No space left"):
    images.save_image(out, np.zeros((6, 6, 3), np.float32))
  monkeypatch.undo()
  assert out.read_bytes() == old                   # old result intact
  assert os.listdir(tmp_path / "sub") == ["res.png"]  # no temporary files left behind
  images.save_image(out, np.ones((3, 3, 3), np.float32))
  assert images.load_image(out).shape == (3, 3, 3)
  assert os.listdir(tmp_path / "sub") == ["res.png"]


# --------------------------------------------------------------------------- #
# Real data
# --------------------------------------------------------------------------- #


def test_real_content_images(shared_data):
  paths = images.iter_image_files(os.path.join(shared_data, "content"))
  assert len(paths) >= 5
  batch, errors = images.load_batch(paths, size=64)
  assert errors == []
  batch = batch if isinstance(batch, list) else list(batch)
  assert len(batch) == len(paths)
  for path, img in zip(paths, batch):
    _assert_image(img)
    assert max(img.shape[:2]) == 64
    with Image.open(path) as im:
      w, h = im.size
    assert img.shape[:2] == images.target_size(h, w, 64)
    assert img.std() > 0.02, path                   # real picture, not a constant
  full = images.load_image(paths[0])
  with Image.open(paths[0]) as im:
    assert full.shape[:2] == (im.size[1], im.size[0])
