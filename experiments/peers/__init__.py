"""In-house PyTorch twins of jaxstyle models, for parity tests and benchmarks.

Each module is written from the formulas (not from jaxstyle code) and imports
``torch`` at the top, so import a module only where torch is installed
(``pytest.importorskip("torch")``, or catch ``ImportError``):

* ``peers.gatys``: the Gatys objective and one Adam step on the pixels
  (``TorchGatys``), on a functional VGG-19 trunk built from jaxstyle's HWIO
  weights (``TorchVGG``).
* ``peers.cgan``: the MNIST cGAN (``make_models``) and its alternating
  D-then-G update (``CGANStep``).
* ``peers.stylizer``: the stylization generator's twin (``TorchStylizer``,
  loads jaxstyle params), Johnson et al.'s ``TransformerNet``, and the
  stylizer's bank train step (``StylizerTrainStep``).
* ``peers.vgg``: the torchvision-layout VGG-19 ``features`` network used by the
  weight-conversion parity tests.

Images cross the boundary as NumPy float32 RGB [0, 1], [H, W, 3] (or NHWC
batches); inside, tensors are NCHW-shaped (optionally channels_last in memory).
Importing this package itself does not import torch.
"""
