"""The tiny stylizer run that tests of the trainer and of its users (inference, personalization) share.

``tiny_config(shared_data, vgg_path, **changes)`` is a ``configs/stylizer.py``
``Config`` for a few-second run on real photos and paintings: a bank of two
styles and the style encoder, whose first encoder painting is held out.
"""

import os

from configs import stylizer as stylizer_config

STYLES = ("hokusai_great_wave.jpg", "picabia_udnie.jpg")
# Encoder-only styles: the first one is held out (the unseen style), the other two train the encoder.
PAINTINGS = ("arkhip-kuindzhi_moonlit-night-on-the-dnieper.jpg", "ivan-aivazovsky_moonlit-path.jpg",
             "ivan-aivazovsky_the-ninth-wave.jpg")


def tiny_config(shared_data, vgg_path, **changes):
  base = dict(
      content_dir=os.path.join(shared_data, "photos", "bsds500", "train"),
      eval_dir=os.path.join(shared_data, "photos", "bsds500", "val"),
      styles=tuple(os.path.join(shared_data, "styles", s) for s in STYLES),
      encoder_styles=tuple(os.path.join(shared_data, "paintings", p) for p in PAINTINGS),
      encoder_holdout=1,
      crop_size=32, style_size=40, batch_size=4, eval_photos=2, eval_size=32, vgg_weights=vgg_path,
      latent_dim=8, widths=(8, 16), stem_kernel=3, residual_blocks=1, encoder_hidden=(16,),
      encoder_taps=("relu1_1", "relu2_1"), encoder_standardize=True, d_widths=(8, 16),
      d_feature_dim=16, d_steps=1,
      adv_weight=0.01, identity_examples=1, num_steps=4, checkpoint_every=2, log_every=2,
      sample_every=4, eval_every=4, progress=False)
  base.update(changes)
  return stylizer_config.Config(**base)
