"""Flax linen networks, one per module (import the one you need: ``from jaxstyle.nets import cgan``).

* ``layers``: shared building blocks (2x2 pooling, depth-to-space, conv lowerings).
* ``stylemod``: ``StyleMod``, ``x * (1 + s) + b`` from a style latent.
* ``stylizer``, ``style_encoder``, ``patchgan``: the feed-forward stylizer, its
  style latents and its discriminator.
* ``cgan``: the MNIST conditional GAN (generator, projection discriminator).
* ``classifier``: the LeNet oracle behind the cGAN metrics.

Networks hold no training code: their steps live in ``jaxstyle.train``.
"""
