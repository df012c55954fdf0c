"""``stylize.py --checkpoint RUN``: stylize photos with a trained stylization network, and ``export``.

Flags (defined by ``define_flags``; the shared ones — ``--content``,
``--style``, ``--style_weights``, ``--out``, ``--size``, ``--preserve_color``,
``--vgg_weights`` — are stylize.py's):

* ``--style`` NAME (a bank style: its file stem, e.g. ``hokusai_great_wave``)
  or an image file (through the style encoder); several ``--style`` with
  ``--style_weights``, or ``--mix NAME_or_IMAGE:W,...``, blend the latents.
* ``--profile FILE.style[:W]`` (repeatable; ``personalize.py`` writes them)
  adds a personal style to the blend; ``--style NAME_or_IMAGE:W`` then gives
  the other parts their weights (``--profile me.style:0.7 --style
  vangogh_starry_night:0.3``). A profile made for another checkpoint is
  refused. Without ``--checkpoint``, the profile's own recorded checkpoint is
  used.
* ``--strength t`` scales the (blended) latent: 0 gives the content
  reconstruction, 1 the style. Not given and only profiles blended: their
  stored default strengths (weighted mean).
* ``--preserve_color luminance`` keeps the photo's chroma (YIQ) under the
  output's luminance; ``histogram`` matches the output's colour statistics to
  the photo's.
* ``--content`` a file (``--out`` a file) or a folder (``--out`` a folder:
  one PNG per readable image, same relative name; unreadable files are
  reported and skipped, and the run exits 2 if any was). ``--size``: the
  longer side in pixels (default: the image's own size). Images above
  ``--whole_pixels`` pixels run as tiles with image-wide statistics
  (``jaxstyle.inference.tiling``).
* Every output is written atomically; errors leave nothing half-written.
  --out is checked before any work, and the peak memory of the largest image
  (``jaxstyle.inference.stylize_memory``) against --max_memory_gb. The flags
  above (``NETWORK_ONLY``) are refused without --checkpoint.
"""

from __future__ import annotations

import os

import cli
from cli import FLAGS, flags

from jaxstyle import fileio
from jaxstyle.errors import print_warning

# Flags that only the network mode reads (stylize.py refuses them without --checkpoint).
NETWORK_ONLY = ("checkpoint_step", "strength", "mix", "tile", "whole_pixels", "style_size")


def define_flags() -> None:
  flags.DEFINE_string("checkpoint", None, "Run directory of train_stylizer.py: stylize with the "
                      "trained network instead of by optimisation.")
  flags.DEFINE_integer("checkpoint_step", None, "With --checkpoint: the checkpoint step to use "
                       "(default: the newest).")
  flags.DEFINE_float("strength", 1.0, "With --checkpoint: style strength in [0, 1]; 0 reproduces "
                     "the photo, 1 is the full style.")
  flags.DEFINE_list("mix", None, "With --checkpoint: blend styles, e.g. "
                    "hokusai_great_wave:0.6,picabia_udnie:0.4 (bank names or image files).")
  flags.DEFINE_integer("tile", 512, "With --checkpoint: tile side for images above --whole_pixels "
                       "(a multiple of 4).")
  flags.DEFINE_integer("whole_pixels", 1024 * 1024, "With --checkpoint: images with more pixels "
                       "than this are stylized in tiles (bounded memory).")
  flags.DEFINE_integer("style_size", 256, "With --checkpoint: style images given as files are "
                       "resized (shorter side) to this before the style encoder.")
  flags.DEFINE_multi_string("profile", None, "A personal .style profile (personalize.py), "
                            "optionally FILE.style:WEIGHT; repeat to blend, and combine with "
                            "--style NAME_or_IMAGE:WEIGHT. Implies --checkpoint = the profile's "
                            "own stylizer when --checkpoint is not given.")


def _weighted(text: str) -> tuple[str, float] | None:
  """``X:W`` -> (X, W) when W is a number >= 0, else None."""
  head, sep, tail = text.rpartition(":")
  if not sep or not head:
    return None
  try:
    w = float(tail)
  except ValueError:
    return None
  return (head, w) if w >= 0 else None  # NaN fails the test too


def _profiles() -> list[tuple[str, float]]:
  from jaxstyle.personalize import profile as prof  # pylint: disable=g-import-not-at-top

  return [prof.parse_profile_arg(p) for p in FLAGS.profile or []]


def profile_checkpoint() -> str | None:
  """The checkpoint recorded in the first --profile (for stylize.py without --checkpoint)."""
  from jaxstyle.personalize import exemplars  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import profile as prof  # pylint: disable=g-import-not-at-top

  path = _profiles()[0][0]
  profile = prof.load_profile(path)
  recorded = exemplars.recorded_checkpoint(profile)
  if recorded is None:
    named = (profile.provenance.get("checkpoint") or {}).get("path") or "none recorded"
    raise cli.UsageError(f"--profile {path} does not name a stylizer run on this machine "
                         f"({named}); pass --checkpoint RUN")
  return recorded


def _style_items() -> list[tuple[str, float]]:
  """(NAME_or_IMAGE, weight) pairs from --mix, else --style (+ --style_weights)."""
  import gatys_common  # pylint: disable=g-import-not-at-top

  if FLAGS.mix:
    if FLAGS.style:
      raise cli.UsageError("give either --mix or --style, not both")
    items = []
    for part in FLAGS.mix:
      item = _weighted(part)
      if item is None:
        raise cli.UsageError(f"--mix entry {part!r}: write STYLE:WEIGHT with WEIGHT >= 0, e.g. "
                             "hokusai_great_wave:0.6,picabia_udnie:0.4")
      items.append(item)
    if sum(w for _, w in items) <= 0:
      raise cli.UsageError("--mix weights are all zero; give at least one positive weight")
    return items
  if FLAGS.profile:
    items = []
    for text in FLAGS.style or []:
      items.append(_weighted(text) or (text, 1.0))
    return items
  paths = gatys_common.style_paths()
  weights = gatys_common.parse_style_weights(len(paths)) or [1.0] * len(paths)
  return list(zip(paths, weights))


def _latent(model, items, size: int):
  """(the blended latent [D] of the items and the --profile entries, the profiles' default strength)."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import images, inference  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import style_encoder as se  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import profile as prof  # pylint: disable=g-import-not-at-top

  latents, weights, strengths = [], [], []
  for path, w in _profiles():
    p = prof.load_profile(path)
    prof.check_profile_for(p, latent_dim=model.latent_dim, fingerprint=model.fingerprint, path=path)
    latents.append(p.latent)
    weights.append(w)
    strengths.append(p.strength)
  if weights and sum(weights) + sum(w for _, w in items) <= 0:
    raise cli.UsageError("the --profile/--style weights are all zero; give one a positive weight")
  default = (float(np.dot(strengths, weights) / sum(weights))
             if strengths and not items and sum(weights) > 0 else None)
  for name, _ in items:
    if name in model.style_names:
      latents.append(model.bank_latent(name))
    elif os.path.exists(name):
      im = images.load_image(name, size, side="shorter", min_side=inference.MIN_STYLE_SIDE)
      latents.append(np.asarray(model.encode_style(model.params, im[None]))[0])
    else:
      model.bank_latent(name)  # raises the unknown-style error listing the bank names
  weights += [w for _, w in items]
  return np.asarray(se.mix_latents(np.stack(latents), weights)), default


def _postprocess(out, content, mode: str):
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import images  # pylint: disable=g-import-not-at-top

  if mode == "luminance":
    yiq = np.concatenate([images.luminance(out), images.rgb_to_yiq(content)[..., 1:]], axis=-1)
    return np.clip(images.yiq_to_rgb(yiq), 0.0, 1.0).astype(np.float32)
  if mode == "histogram":
    return np.clip(images.match_color(out, content), 0.0, 1.0).astype(np.float32)
  return out


def _jobs(content: str, out: str) -> list[tuple[str, str]]:
  from jaxstyle import images  # pylint: disable=g-import-not-at-top

  if os.path.isdir(content):
    if os.path.splitext(out)[1]:
      raise cli.UsageError(f"--content {content} is a folder, so --out must be a folder, not "
                           f"{out!r}")
    fileio.check_output_dir(out, "--out")
    return [(p, os.path.join(out, os.path.splitext(os.path.relpath(p, content))[0] + ".png"))
            for p in images.iter_image_files(content)]
  if os.path.splitext(out)[1].lower() not in (".png", ".jpg", ".jpeg"):
    raise cli.UsageError(f"--out={out}: use a .png, .jpg or .jpeg file name")
  fileio.check_output_file(out, "--out")
  return [(content, out)]


def _check_memory(model, jobs, size: int | None) -> None:
  """Refuses the run if its largest image would need more memory than allowed (headers only)."""
  from jaxstyle import images, inference  # pylint: disable=g-import-not-at-top

  worst = None
  for src, _ in jobs:
    hw = images.read_size(src)
    if hw is None:
      continue  # unreadable: reported and skipped when its turn comes
    hw = images.target_size(*hw, size) if size else hw
    need = inference.stylize_memory(model.config.generator, *hw, whole_pixels=FLAGS.whole_pixels,
                                    tile=FLAGS.tile)
    if worst is None or need > worst[0]:
      worst = (need, src, hw)
  if worst is not None:
    need, src, (h, w) = worst
    what = f"--size={size}" if size else f"--content {src} at its own size"
    cli.check_memory(need, f"{what} ({w}x{h})")


def main() -> None:
  """Network mode of stylize.py (flags already parsed)."""
  if not 0.0 <= FLAGS.strength <= 1.0:
    raise cli.UsageError(f"--strength={FLAGS.strength} must be in [0, 1]")
  if FLAGS.tile < 4 or FLAGS.tile % 4:
    raise cli.UsageError(f"--tile={FLAGS.tile} must be a positive multiple of 4")
  if FLAGS.size is not None and FLAGS["size"].present and FLAGS.size < 8:
    raise cli.UsageError(f"--size={FLAGS.size} must be >= 8 pixels")
  items = _style_items()
  jobs = _jobs(FLAGS.content, FLAGS.out)

  from jaxstyle import cpu_tuning  # pylint: disable=g-import-not-at-top

  cpu_tuning.use_fast_cpu_convs()
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

  from jaxstyle import images, inference  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import style_encoder as se  # pylint: disable=g-import-not-at-top

  model = inference.load_stylizer(FLAGS.checkpoint, step=FLAGS.checkpoint_step,
                                  vgg_weights=FLAGS.vgg_weights)
  size = FLAGS.size if FLAGS["size"].present else None
  _check_memory(model, jobs, size)
  latent, default_strength = _latent(model, items, FLAGS.style_size)
  strength = (default_strength if default_strength is not None and not FLAGS["strength"].present
              else FLAGS.strength)
  latent = se.with_strength(latent, strength)
  failed = []
  bar = tqdm(jobs, desc="stylize", unit="img", disable=len(jobs) == 1)
  for src, dst in bar:
    try:
      content = images.load_image(src, size, min_side=inference.MIN_CONTENT_SIDE)
    except images.ImageError as e:
      failed.append(src)
      print_warning(f"skipping {src}: {e}")
      continue
    out = inference.stylize_image(model.config.generator, model.params["g"], content, latent,
                                  whole_pixels=FLAGS.whole_pixels, tile=FLAGS.tile)
    images.save_image(dst, _postprocess(out, content, FLAGS.preserve_color))
  n_ok = len(jobs) - len(failed)
  print(f"wrote {n_ok} image(s) to {FLAGS.out} with {os.path.basename(model.path)} step {model.step}")
  if failed:
    cli.fail(f"{len(failed)} of {len(jobs)} content image(s) could not be read (listed above); "
             "the others were written")


def export_main(argv) -> None:
  """``stylize.py export --checkpoint RUN --out FILE.jaxexport``."""
  del argv
  if not FLAGS.checkpoint or not FLAGS.out:
    raise cli.UsageError("export needs --checkpoint RUN and --out FILE.jaxexport")
  fileio.check_output_file(FLAGS.out, "--out")
  from jaxstyle import cpu_tuning  # pylint: disable=g-import-not-at-top

  cpu_tuning.use_fast_cpu_convs()
  from jaxstyle import inference  # pylint: disable=g-import-not-at-top

  model = inference.load_stylizer(FLAGS.checkpoint, step=FLAGS.checkpoint_step)
  styles = {n: model.bank_latent(n) for n in model.style_names} if "bank" in model.params else {}
  inference.export_stylizer(model.config.generator, model.params["g"], FLAGS.out, styles=styles)
  print(f"wrote {FLAGS.out} (+ {FLAGS.out}.json: {len(styles)} bank style latents) from "
        f"{model.path} step {model.step}")


def define_export_flags() -> None:
  flags.DEFINE_string("checkpoint", None, "Run directory of train_stylizer.py.")
  flags.DEFINE_integer("checkpoint_step", None, "Checkpoint step (default: the newest).")
  flags.DEFINE_string("out", None, "Output artifact, e.g. stylizer.jaxexport (a JSON sidecar with "
                      "the bank latents is written next to it).")
