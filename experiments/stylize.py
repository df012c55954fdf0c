"""Style transfer by image optimisation (Gatys et al.) from the command line.

  python experiments/stylize.py --content ../shared/data/content/skimage_chelsea.png \
      --style ../shared/data/styles/vangogh_starry_night.jpg --out out/chelsea.png \
      --size 512 --steps 300 --seed 0 [--vgg_weights W.npz]
  # blend two styles 70/30, keep the photo's colours, coarse-to-fine:
  python experiments/stylize.py --content C --style S1 --style S2 --style_weights 0.7,0.3 \
      --preserve_color luminance --num_scales 3 --out O.png
  python experiments/stylize.py --flagfile experiments/configs/stylize_quick.flags --out O.png
  # with a trained stylization network (train_stylizer.py), instantly, at any size:
  python experiments/stylize.py --checkpoint runs/stylizer_quick --content PHOTO_or_DIR \
      --style hokusai_great_wave --out O.png [--strength 0.7] [--mix A:0.6,B:0.4] [--preserve_color luminance]
  python experiments/stylize.py export --checkpoint runs/stylizer_quick --out stylizer.jaxexport
  # with a personal profile (experiments/personalize.py), alone or blended:
  python experiments/stylize.py --content PHOTO --profile me.style:0.7 --style vangogh_starry_night:0.3 --out O.png

The optimisation flags are the fields of ``jaxstyle.optimize.StylizeConfig``
(``--lr`` is its ``learning_rate``). Writes the run directory (--workdir;
default: next to --out, named ``<out without extension>_run``): config.json
(every setting, the loss terms, the VGG weight family, preprocessing and
source path, versions), metrics.jsonl (the losses of every step), result.png
and side_by_side.png (content | style(s) | result). --out is written last,
atomically: a failed run (bad input, non-finite loss) exits with status 2 and
one ``error:`` line and leaves no result image. A rerun into the same workdir
starts over (metrics.jsonl is rewritten).

Before any work: --out (and the workdir) are checked (a folder given for the
file, a file in the way of a folder: one ``error:`` line naming the flag); the
peak memory is estimated (``jaxstyle.optimize.memory_estimate``, with
--checkpoint ``jaxstyle.inference.stylize_memory``) and a size above
--max_memory_gb (default: the memory available) is refused; flags of the other
mode (e.g. --strength without --checkpoint, --steps with it) are refused.
Images larger than --max_pixels are refused; images upscaled more than 4x give
one ``warning:`` line.
"""

from __future__ import annotations

import os
import sys

import cli
import gatys_common
import stylize_network
from cli import FLAGS, flags

from jaxstyle import config as cfglib
from jaxstyle import fileio
from jaxstyle import optimize as optimize_config

# Flags of Gatys optimisation only (the StylizeConfig settings but --preserve_color, which both use).
GATYS_ONLY = ("workdir", "init_image", "seed") + tuple(
    s.cli_name for s in cfglib.settings(optimize_config.StylizeConfig)
    if s.flag and s.name != "preserve_color")


def define_flags() -> None:
  flags.DEFINE_string("content", None, "Content photo (any format Pillow reads); with --checkpoint "
                      "also a folder of photos.")
  gatys_common.define_style_flags()
  flags.DEFINE_string("out", None, "Output image (.png or .jpg), written atomically at the end; "
                      "with --checkpoint and a --content folder, an output folder.")
  flags.DEFINE_integer("size", 512, "Longer side of the output in pixels (the content is resized "
                       "to it; style images to --style_scale times it). With --checkpoint the "
                       "default is the photo's own size.")
  flags.DEFINE_string("workdir", None, "Run directory (config.json, metrics.jsonl, result.png, "
                      "side_by_side.png). Default: <--out without extension>_run next to --out. "
                      "A rerun into the same directory starts over.")
  flags.DEFINE_string("init_image", None, "Start image for --init=image.")
  gatys_common.define_optimization_flags(content=True)
  stylize_network.define_flags()
  cli.define_max_pixels()
  cli.define_max_memory()


def default_workdir(out: str) -> str:
  return os.path.splitext(os.path.abspath(out))[0] + "_run"


def main(argv):
  del argv
  if not FLAGS.content:
    raise cli.UsageError("--content is required (the photo to stylise)")
  if not FLAGS.out:
    raise cli.UsageError("--out is required (output .png or .jpg)")
  if FLAGS.profile and not FLAGS.checkpoint:
    FLAGS.checkpoint = stylize_network.profile_checkpoint()
  if FLAGS.checkpoint:
    cli.refuse_given(GATYS_ONLY, "applies only without --checkpoint (Gatys optimisation); drop it")
    stylize_network.main()
    return
  cli.refuse_given(stylize_network.NETWORK_ONLY, "applies only with --checkpoint (a trained "
                   "network); drop it, or add --checkpoint RUN")
  if os.path.splitext(FLAGS.out)[1].lower() not in (".png", ".jpg", ".jpeg"):
    raise cli.UsageError(f"--out={FLAGS.out}: use a .png, .jpg or .jpeg file name")
  fileio.check_output_file(FLAGS.out, "--out")
  fileio.check_output_dir(FLAGS.workdir or default_workdir(FLAGS.out), "--workdir")
  if FLAGS.size < 16:
    raise cli.UsageError(f"--size={FLAGS.size} must be >= 16 pixels")
  styles_p = gatys_common.style_paths()
  style_weights = gatys_common.parse_style_weights(len(styles_p))
  config = gatys_common.build_config(content=True)
  if config.init == "image" and not FLAGS.init_image:
    raise cli.UsageError("--init=image needs --init_image PATH")

  import jax

  from jaxstyle import images, optimize, rundir, vgg

  weights = vgg.load_weights(FLAGS.vgg_weights)
  weights.check_layers(config.layers())  # fail before loading any image
  hw = images.read_size(FLAGS.content)
  if hw is not None:  # an unreadable file: load_image says what is wrong with it
    hw = images.target_size(*hw, FLAGS.size)
    style_hws = [images.read_size(p) or (1, 1) for p in styles_p]
    cli.check_memory(optimize.memory_estimate(config, hw, style_hws, weights),
                     f"--size={FLAGS.size} ({hw[1]}x{hw[0]})")
  content = images.load_image(FLAGS.content, FLAGS.size)
  styles = [images.load_image(p) for p in styles_p]
  init_image = images.load_image(FLAGS.init_image) if config.init == "image" else None
  gatys_common.warn_upscaled_styles(styles_p, styles, content.shape[:2], config.style_scale)
  if init_image is not None:
    images.check_upscale(FLAGS.init_image, init_image.shape[:2], content.shape[:2])

  run = rundir.RunDir(FLAGS.workdir or default_workdir(FLAGS.out))
  run.truncate_metrics(-1)
  gatys_common.write_config(run, config, weights,
                            inputs={"content": os.path.abspath(FLAGS.content),
                                    "styles": [os.path.abspath(p) for p in styles_p],
                                    "style_weights": style_weights,
                                    "init_image": FLAGS.init_image},
                            output=os.path.abspath(FLAGS.out), size=FLAGS.size, seed=FLAGS.seed,
                            content_shape=list(content.shape))
  progress = gatys_common.Progress(run, config.steps, "stylize")
  try:
    result = optimize.stylize(weights, content, styles, style_weights, config,
                              jax.random.PRNGKey(FLAGS.seed), init_image=init_image,
                              callback=progress)
  finally:
    progress.close()
  panel = images.side_by_side([content] + styles + [result.image], height=content.shape[0])
  images.save_image(os.path.join(run.path, "side_by_side.png"), panel)
  images.save_image(os.path.join(run.path, "result.png"), result.image)
  images.save_image(FLAGS.out, result.image)
  last = result.history[-1]
  print(f"wrote {FLAGS.out} ({result.image.shape[0]}x{result.image.shape[1]}); run directory "
        f"{run.path}; final loss {last['loss']:.4g} (content {last['content']:.4g}, "
        f"style {last['style']:.4g})")


if __name__ == "__main__":
  if len(sys.argv) > 1 and sys.argv[1] == "export":
    del sys.argv[1]
    stylize_network.define_export_flags()
    cli.run(stylize_network.export_main)
  else:
    define_flags()
    cli.run(main)
