"""A linen ResNet18 with the parameter layout of Flax's ImageNet example (examples/imagenet).

Written for these tests to mirror the parameter layout of Flax's examples (Apache-2.0); contains
no Flax code. It mirrors what the example's ``ResNet18`` (ResNet v1.5) creates -- names,
shapes, layer types, the ``batch_stats`` collection -- so that jaxinit meets what a user of the
example meets. Under ``params``:

* ``conv_init/kernel`` ``(7, 7, 3, 64)``: a bias-free 7x7 stride-2 ``nn.Conv``; ``bn_init``
  (``nn.BatchNorm``: ``scale``, ``bias``; ``mean``, ``var`` under ``batch_stats``); then a 3x3
  stride-2 max pool;
* ``ResNetBlock_<i>``, i = 0..7, two per stage at 64, 128, 256, 512 features (the first block
  of stages 2-4 has stride 2): ``Conv_0`` and ``Conv_1`` (3x3, bias-free), ``BatchNorm_0`` and
  ``BatchNorm_1`` (its scale starts at zero), and where the shape changes a 1x1 ``conv_proj``
  with its ``norm_proj``;
* ``Dense_0``: the ``(512, num_classes)`` head, with a bias.

`make` builds it (11,689,512 parameters with 1000 classes), `inputs` is the example's init
batch shape.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

#: Blocks per stage of ResNet18.
STAGES = (2, 2, 2, 2)


@dataclasses.dataclass(frozen=True)
class Config:
    """The network's sizes."""

    stages: tuple[int, ...] = STAGES
    num_classes: int = 1000
    width: int = 64  # features of the stem and the first stage; doubled at each stage


def batch_norm(train: bool, name: str | None = None, zero_scale: bool = False) -> nn.BatchNorm:
    """The example's norm: momentum 0.9, epsilon 1e-5, statistics averaged over ``batch``."""
    scale_init = nn.initializers.zeros_init() if zero_scale else nn.initializers.ones_init()
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        axis_name="batch",
        scale_init=scale_init,
        name=name,
    )


class ResNetBlock(nn.Module):
    """Two 3x3 convolutions with norms, and a 1x1 projection of the input when shapes differ."""

    features: int
    stride: int = 1
    train: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        strides = (self.stride, self.stride)
        y = nn.Conv(self.features, (3, 3), strides, use_bias=False)(x)
        y = nn.relu(batch_norm(self.train)(y))
        y = nn.Conv(self.features, (3, 3), use_bias=False)(y)
        y = batch_norm(self.train, zero_scale=True)(y)  # each block starts as the identity
        if x.shape != y.shape:
            x = nn.Conv(self.features, (1, 1), strides, use_bias=False, name="conv_proj")(x)
            x = batch_norm(self.train, name="norm_proj")(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    """Stem (7x7/2 conv, norm, 3x3/2 max pool), the stages of blocks, global average, head."""

    cfg: Config = Config()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        c = self.cfg
        x = nn.Conv(c.width, (7, 7), (2, 2), padding=((3, 3), (3, 3)), use_bias=False,
                    name="conv_init")(x)  # fmt: skip
        x = nn.relu(batch_norm(train, name="bn_init")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for stage, blocks in enumerate(c.stages):
            for j in range(blocks):
                stride = 2 if stage > 0 and j == 0 else 1
                x = ResNetBlock(c.width * 2**stage, stride, train)(x)
        return nn.Dense(c.num_classes)(jnp.mean(x, axis=(1, 2)))


def make(cfg: Config = Config()) -> ResNet:
    """ResNet18 (by default) with `cfg`'s sizes."""
    return ResNet(cfg)


def inputs(batch: int = 1, size: int = 224) -> jax.ShapeDtypeStruct:
    """The shape of an init batch of ``size`` x ``size`` RGB images (the example: 1x224x224x3)."""
    return jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32)
