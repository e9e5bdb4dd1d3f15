r"""The papers' networks as flax modules, for inputs stored as flattened rows ``[N, D]``.

Pools hold every point as one row: ``jaxal.data`` flattens an ``H x W x C`` image row-major
(``D = H W C``: 784 for MNIST, 64 for the 8x8 digits, 3072 for CIFAR-10 in Keras' ``HWC``
order). Each model here takes such rows ``[..., D]``, reshapes them to ``[B, H, W, C]``
images (:attr:`image_shape`), and returns logits ``[..., C]``, so it plugs into every
posterior of :mod:`jaxal.posterior` in place of an :class:`~jaxal.posterior.MLP`.

**Dropout** layers are always on (``deterministic=False``) and draw their masks from the
``"dropout"`` rng, as :class:`~jaxal.posterior.DropoutMLP`: :func:`~jaxal.posterior.mc_dropout`
samples them (one mask set per posterior sample, shared by every point), and
:func:`~jaxal.posterior.ensemble` trains with them and predicts with every dropout layer off.
``rate=0`` removes them (flax's ``nn.Dropout`` is then the identity and needs no rng).
Convolutional dropout drops whole feature maps (``Dropout2d``: one mask entry per example and
channel, ``broadcast_dims`` over height and width), as the authors' ``ConsistentMCDropout2d``.

Sources (PyTorch, checked against the authors' code):

* :class:`ConvNet`: the BatchBALD paper's MNIST network (Kirsch, van Amersfoort & Gal, 2019;
  ``BlackHC/BatchBALD`` ``src/mnist_model.py`` and ``BlackHC/batchbald_redux``
  ``06_example_experiment.ipynb``), which the EPIG paper (Bickford Smith, Kirsch, Farquhar,
  Gal, Foster & Rainforth, 2023) uses unchanged for MNIST (``fbickfordsmith/epig``
  ``src/models/conv_net_batchbald_mcdo.py``, ``MCDropoutBatchBALD2BlockConvNet`` with
  ``dropout_rate: 0.5``, the model of every job in ``jobs/mnist.sh``);
* :class:`ResNet`: EPIG's CIFAR-10 network (``src/models/conv_net_resnet18_mcdo.py``,
  ``MCDropoutResNet18V1``: torchvision's ResNet-18 with a 3x3 stem, no max-pooling and
  ``Dropout2d`` after the first three stages), with group instead of batch normalisation.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
from jaxtyping import Array, Float


def images(x: Float[Array, "... D"], image_shape: Sequence[int]) -> Float[Array, "B H W C"]:
    """Rows ``[..., D]`` as images ``[B, H, W, C]`` (``B`` the product of the leading axes).

    Raises:
      ValueError: when ``D`` is not ``H * W * C``.
    """
    H, W, C = image_shape
    if x.shape[-1] != H * W * C:
        raise ValueError(
            f"inputs have D = {x.shape[-1]} features per row but image_shape = "
            f"{tuple(image_shape)} needs H * W * C = {H * W * C}; pass the pool's image shape"
        )
    return x.reshape(-1, H, W, C)


def _dropout2d(rate: float) -> nn.Dropout:
    """Channel dropout of ``[B, H, W, C]`` maps: one mask entry per example and channel."""
    return nn.Dropout(rate, broadcast_dims=(-3, -2), deterministic=False)


class ConvNet(nn.Module):
    r"""The BatchBALD (and EPIG) MNIST CNN with MC dropout: conv 32-64, max-pooling, dense 128.

    Each convolutional block is ``conv (k x k, valid) -> Dropout2d -> max-pool 2x2 -> ReLU``,
    then ``dense (hidden) -> dropout -> ReLU -> dense (C)``, dropout rate 0.5 throughout, as
    the authors' ``BayesianNet`` / ``MCDropoutBatchBALD2BlockConvNet`` (module docstring). On
    28x28x1 inputs the defaults give ``24x24x32 -> 12x12x32 -> 8x8x64 -> 4x4x64 = 1024 ->
    128 -> C``. EPIG's three-block variant (``MCDropoutBatchBALD3BlockConvNet``) is
    ``ConvNet(C, channels=(32, 64, 128), kernel_size=3, hidden=512)``.

    Attributes:
      num_classes: ``C``, the width of the output layer.
      image_shape: ``(H, W, C_in)`` of the flattened input rows; ``(28, 28, 1)`` for MNIST,
        ``(8, 8, 1)`` for the digits.
      channels: output channels of the convolutional blocks.
      kernel_size: ``k`` of every convolution.
      hidden: width of the dense layer before the output layer.
      rate: dropout probability of every dropout layer; 0 removes them.
    """

    num_classes: int
    image_shape: tuple[int, int, int] = (28, 28, 1)
    channels: Sequence[int] = (32, 64)
    kernel_size: int = 5
    hidden: int = 128
    rate: float = 0.5

    @nn.compact
    def __call__(self, x: Float[Array, "... D"]) -> Float[Array, "... C"]:
        batch_shape = x.shape[:-1]
        h = images(x, self.image_shape)
        for width in self.channels:
            h = nn.Conv(width, (self.kernel_size, self.kernel_size), padding="VALID")(h)
            h = _dropout2d(self.rate)(h)
            h = nn.relu(nn.max_pool(h, (2, 2), strides=(2, 2)))
        h = h.reshape(h.shape[0], -1)
        h = nn.Dense(self.hidden)(h)
        h = nn.relu(nn.Dropout(self.rate, deterministic=False)(h))
        return nn.Dense(self.num_classes)(h).reshape(*batch_shape, self.num_classes)


def _norm(features: int) -> nn.GroupNorm:
    """Group normalisation with up to 32 groups that divide ``features``."""
    return nn.GroupNorm(num_groups=math.gcd(32, features))


class _BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions and a (projected) shortcut."""

    features: int
    stride: int

    @nn.compact
    def __call__(self, x: Float[Array, "B H W Ci"]) -> Float[Array, "B H2 W2 Co"]:
        strides = (self.stride, self.stride)
        h = nn.Conv(self.features, (3, 3), strides, padding=1, use_bias=False)(x)
        h = nn.relu(_norm(self.features)(h))
        h = nn.Conv(self.features, (3, 3), padding=1, use_bias=False)(h)
        h = _norm(self.features)(h)
        if self.stride != 1 or x.shape[-1] != self.features:
            x = nn.Conv(self.features, (1, 1), strides, use_bias=False)(x)
            x = _norm(self.features)(x)
        return nn.relu(h + x)


class ResNet(nn.Module):
    r"""A ResNet for small images with MC dropout between stages (EPIG's CIFAR-10 network).

    A 3x3 stem convolution (``width`` channels, no max-pooling), then stage ``s`` of
    ``stage_sizes[s]`` basic blocks with ``width * 2**s`` channels (stride 2 from the second
    stage on), ``Dropout2d`` after every stage but the last, global average pooling and a dense
    output layer. The defaults are EPIG's ``MCDropoutResNet18V1`` (ResNet-18: stages
    ``(2, 2, 2, 2)``, width 64, dropout 0.5), except that group normalisation replaces batch
    normalisation so the network has no state besides its parameters and every posterior
    can train and sample it. ``ResNet(10, stage_sizes=(1, 1, 1), width=16)`` is a ResNet-8
    that a CPU trains in minutes.

    Attributes:
      num_classes: ``C``, the width of the output layer.
      image_shape: ``(H, W, C_in)`` of the flattened input rows; ``(32, 32, 3)`` for CIFAR-10.
      stage_sizes: number of basic blocks per stage.
      width: channels of the stem and the first stage (doubled at every later stage).
      rate: dropout probability after each stage but the last; 0 removes the dropout.
    """

    # Fields and input handling shaped like ConvNet's; the networks differ, so no base class.
    num_classes: int
    image_shape: tuple[int, int, int] = (32, 32, 3)
    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    width: int = 64
    rate: float = 0.5

    @nn.compact
    def __call__(self, x: Float[Array, "... D"]) -> Float[Array, "... C"]:
        batch_shape = x.shape[:-1]
        h = images(x, self.image_shape)
        h = nn.Conv(self.width, (3, 3), padding=1, use_bias=False)(h)
        h = nn.relu(_norm(self.width)(h))
        for stage, num_blocks in enumerate(self.stage_sizes):
            for block in range(num_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                h = _BasicBlock(self.width * 2**stage, stride)(h)
            if stage < len(self.stage_sizes) - 1:
                h = _dropout2d(self.rate)(h)
        h = h.mean(axis=(1, 2))
        return nn.Dense(self.num_classes)(h).reshape(*batch_shape, self.num_classes)
