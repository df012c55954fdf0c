"""Images as NumPy float32 RGB in [0, 1]: files, geometry, panels and colour.

* ``io``: ``load_image``/``load_batch``/``iter_image_files`` (decoding rules,
  ``ImageError``, the pixel limit ``set_max_pixels``, the upscaling warning
  ``check_upscale``), ``read_size`` and atomic ``save_image``.
* ``ops``: ``resize`` (antialiased Lanczos or bilinear), crops, ``make_grid``,
  ``side_by_side``.
* ``color``: YIQ conversion, luminance and colour matching.

Layout ``[H, W, C]`` for one image, ``[N, H, W, C]`` for a batch (NHWC).
"""

from jaxstyle.images.color import (RGB_TO_YIQ, YIQ_TO_RGB, luminance, match_color,
                                   match_luminance, rgb_to_yiq, yiq_to_rgb)
from jaxstyle.images.io import (IMAGE_EXTENSIONS, JPEG_QUALITY, SAVE_FORMATS, UPSCALE_WARN,
                                ImageError, check_upscale, iter_image_files, load_batch, load_image,
                                read_size, save_image, set_max_pixels, to_uint8)
from jaxstyle.images.ops import (RESAMPLE, RESAMPLING, center_crop, make_grid, random_crop,
                                 resize, side_by_side, target_size)

__all__ = [
    "IMAGE_EXTENSIONS", "JPEG_QUALITY", "RESAMPLE", "RESAMPLING", "RGB_TO_YIQ", "SAVE_FORMATS",
    "UPSCALE_WARN", "YIQ_TO_RGB", "ImageError", "center_crop", "check_upscale", "iter_image_files",
    "load_batch", "load_image", "luminance", "make_grid", "match_color", "match_luminance",
    "random_crop", "read_size", "resize", "rgb_to_yiq", "save_image", "set_max_pixels",
    "side_by_side", "target_size", "to_uint8", "yiq_to_rgb",
]
