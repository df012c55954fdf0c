"""Style generation: new images in a style, by Gram matching from noise.

  python experiments/generate.py --style ../shared/data/styles/hokusai_great_wave.jpg \
      --n 4 --size 256 --seed 0 --out_dir out/wave
  python experiments/generate.py --style S1 --style S2 --style_weights 0.5,0.5 --size 192x320 \
      --out_dir D
  # In a personal style (a .style profile from experiments/personalize.py):
  python experiments/generate.py --profile me.style --n 4 --size 256 --out_dir out/mine

A profile is a latent of a trained stylizer, not an image: with --profile the
style images are the profile's *exemplars*, the stylizer's outputs with the
profile (at its default strength) on --photos (default: the first
--photo_count photos of the run's held-out photo folder, centre crops of
--photo_size), blended with equal weights (jaxstyle.personalize.exemplars).
They are saved as exemplar_XX.png beside the samples.

Image i uses the key ``fold_in(PRNGKey(--seed), i)``, so different images (and
different --seed values) start from different noise and differ. --out_dir gets
``sample_XX.png`` (one per image), grid.png, side_by_side.png (style(s) | grid),
and is also the run directory unless --workdir is given: config.json and
metrics.jsonl (the losses of every step, with a ``sample`` column). Image files
are written atomically, all at the end; a failed run exits with status 2 and
one ``error:`` line. The optimisation flags are the fields of
``jaxstyle.optimize.StylizeConfig`` without the content-only ones (``--lr`` is
its ``learning_rate``); the config is ``StylizeConfig`` with ``SYNTHESIS``
applied (no content loss, noise init).

Before any work --out_dir (and --workdir) are checked, and the peak memory of
one image (``jaxstyle.optimize.memory_estimate``) against --max_memory_gb
(default: the memory available). The --profile flags (--checkpoint, --photos,
--photo_count, --photo_size) are refused without --profile. Images larger than
--max_pixels are refused; a style image upscaled more than 4x gives one
``warning:`` line.
"""

from __future__ import annotations

import os
import re

import cli
import gatys_common
from cli import FLAGS, flags

from jaxstyle import fileio
from jaxstyle.errors import print_warning

gatys_common.define_style_flags()
flags.DEFINE_string("profile", None, "A personal .style profile (experiments/personalize.py) "
                    "instead of --style: generate in its style, matching the Grams of its "
                    "exemplars (its stylizer's outputs on --photos).")
flags.DEFINE_string("checkpoint", None, "--profile: the profile's stylizer run (default: the run "
                    "the profile records).")
flags.DEFINE_list("photos", None, "--profile: photo files or folders the exemplars are made from "
                  "(default: the run's held-out photos).")
flags.DEFINE_integer("photo_count", 4, "--profile: number of exemplar photos.", lower_bound=1)
flags.DEFINE_integer("photo_size", 256, "--profile: side of the exemplars (centre crops of the "
                     "photos, shorter side resized to it).", lower_bound=32)
flags.DEFINE_integer("n", 4, "Number of images to generate.")
flags.DEFINE_string("size", "256", "Output size: N (square) or HxW, e.g. 192x320.")
flags.DEFINE_string("out_dir", None, "Directory for the generated images (created).")
flags.DEFINE_string("workdir", None, "Run directory (config.json, metrics.jsonl). Default: "
                    "--out_dir. A rerun into the same directory starts over.")
gatys_common.define_optimization_flags(content=False)
cli.define_max_pixels()
cli.define_max_memory()

PROFILE_ONLY = ("checkpoint", "photos", "photo_count", "photo_size")


def parse_size(value: str) -> tuple[int, int]:
  m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", value or "")
  if not m:
    raise cli.UsageError(f"--size={value!r}: use N or HxW, e.g. 256 or 192x320")
  h = int(m.group(1))
  w = int(m.group(2)) if m.group(2) else h
  if min(h, w) < 16:
    raise cli.UsageError(f"--size={value}: each side must be >= 16 pixels")
  return h, w


def _photo_crops(model):
  """Centre crops of --photos (files or folders), else of the run's own photo folder."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import data  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import exemplars  # pylint: disable=g-import-not-at-top

  n, size = FLAGS.photo_count, FLAGS.photo_size
  if not FLAGS.photos:
    folder = exemplars.default_photo_dir(model)
    if folder is None:
      raise cli.UsageError(f"the stylizer run {model.path} records no photo folder that exists "
                           "here; pass --photos FILE_or_FOLDER,...")
    crops, skipped = data.center_crops(folder, n, size)
  else:
    crops, skipped = [], []
    for item in FLAGS.photos:
      if os.path.isdir(item):
        more, bad = data.center_crops(item, n - len(crops), size)
        crops += list(more)
        skipped += bad
      else:
        crops.append(data.center_crop_file(item, size))
      if len(crops) >= n:
        break
    crops = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.float32)
  for p, message in skipped:
    print_warning(f"skipping photo {p}: {message}")
  if not len(crops):
    raise cli.UsageError("--photos: no readable photo to make the profile's exemplars from")
  return crops


def _profile_exemplars():
  """The --profile's exemplars [N, S, S, 3] and its record for config.json."""
  from jaxstyle import inference  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import exemplars  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import profile as prof  # pylint: disable=g-import-not-at-top

  profile = prof.load_profile(FLAGS.profile)
  run = FLAGS.checkpoint or exemplars.recorded_checkpoint(profile)
  if run is None:
    raise cli.UsageError(f"--profile {FLAGS.profile} does not name a stylizer run on this "
                         "machine; pass --checkpoint RUN")
  model = inference.load_stylizer(run)
  out = exemplars.profile_exemplars(model, profile, _photo_crops(model), path=FLAGS.profile)
  return out, {"profile": os.path.abspath(FLAGS.profile), "checkpoint": model.path,
               "fingerprint": model.fingerprint, "strength": profile.strength,
               "exemplars": len(out)}


def main(argv):
  del argv
  if not FLAGS.out_dir:
    raise cli.UsageError("--out_dir is required (where the generated images go)")
  if FLAGS.n < 1:
    raise cli.UsageError(f"--n={FLAGS.n} must be >= 1")
  hw = parse_size(FLAGS.size)
  fileio.check_output_dir(FLAGS.out_dir, "--out_dir")
  if FLAGS.workdir:
    fileio.check_output_dir(FLAGS.workdir, "--workdir")
  if not FLAGS.profile:
    cli.refuse_given(PROFILE_ONLY, "applies only with --profile; drop it")
  if FLAGS.profile:
    if FLAGS.style:
      raise cli.UsageError("give either --style images or --profile, not both")
    if FLAGS.style_weights:
      raise cli.UsageError("--style_weights applies to --style images; a --profile's exemplars "
                           "are blended equally")
    styles_p, style_weights = [], None
  else:
    styles_p = gatys_common.style_paths()
    style_weights = gatys_common.parse_style_weights(len(styles_p))
  config = gatys_common.build_config(content=False)

  import jax
  import numpy as np

  from jaxstyle import images, optimize, rundir, vgg

  weights = vgg.load_weights(FLAGS.vgg_weights)
  weights.check_layers(config.layers())  # fail before loading any image
  style_hws = ([(FLAGS.photo_size, FLAGS.photo_size)] * FLAGS.photo_count if FLAGS.profile
               else [images.read_size(p) or (1, 1) for p in styles_p])
  cli.check_memory(optimize.memory_estimate(config, hw, style_hws, weights),
                   f"--size={FLAGS.size}")
  if FLAGS.profile:
    exemplar_images, profile_record = _profile_exemplars()
    styles = list(exemplar_images)
  else:
    styles, profile_record = [images.load_image(p) for p in styles_p], None
    gatys_common.warn_upscaled_styles(styles_p, styles, hw, config.style_scale)

  run = rundir.RunDir(FLAGS.workdir or FLAGS.out_dir)
  run.truncate_metrics(-1)
  gatys_common.write_config(run, config, weights,
                            inputs={"styles": [os.path.abspath(p) for p in styles_p],
                                    "style_weights": style_weights, "profile": profile_record},
                            out_dir=os.path.abspath(FLAGS.out_dir), n=FLAGS.n, size=list(hw),
                            seed=FLAGS.seed, sample_keys="fold_in(PRNGKey(seed), i)")
  key = jax.random.PRNGKey(FLAGS.seed)
  outputs = []
  for i in range(FLAGS.n):
    progress = gatys_common.Progress(run, config.steps, f"sample {i + 1}/{FLAGS.n}",
                                     extra={"sample": i})
    # metrics.jsonl steps are global over samples: step = i * steps + local step.
    def callback(row, i=i, progress=progress):
      progress({**row, "step": i * config.steps + row["step"]})
    try:
      result = optimize.synthesize(weights, styles, hw, jax.random.fold_in(key, i),
                                   style_weights, config, callback=callback)
    finally:
      progress.close()
    outputs.append(result.image)
  grid = images.make_grid(np.stack(outputs), nrow=min(4, FLAGS.n))
  for i, img in enumerate(outputs):
    images.save_image(os.path.join(FLAGS.out_dir, f"sample_{i:02d}.png"), img)
  if profile_record is not None:
    for i, img in enumerate(styles):
      images.save_image(os.path.join(FLAGS.out_dir, f"exemplar_{i:02d}.png"), img)
  images.save_image(os.path.join(FLAGS.out_dir, "grid.png"), grid)
  images.save_image(os.path.join(FLAGS.out_dir, "side_by_side.png"),
                    images.side_by_side(styles + [grid], height=min(512, grid.shape[0])))
  print(f"wrote {FLAGS.n} image(s) of {hw[0]}x{hw[1]} to {FLAGS.out_dir}")


if __name__ == "__main__":
  cli.run(main)
