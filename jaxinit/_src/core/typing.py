"""Types and the `Literal` choices of the public API, defined once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias, get_args

import jax
from jax.sharding import NamedSharding, PartitionSpec

Array: TypeAlias = jax.Array
KeyArray: TypeAlias = jax.Array
Shape: TypeAlias = Sequence[int]
DTypeLike: TypeAlias = Any
RealNumeric: TypeAlias = Any  # a Python number or a (possibly traced) JAX/NumPy scalar
Axes: TypeAlias = int | Sequence[int]
OutSharding: TypeAlias = NamedSharding | PartitionSpec | None
#: One rule of `jaxinit.flax.reinit` and the recipes: a regex searched in a parameter's path and
#: an initializer (a callable, a registered name or serialized dict, or None: keep the value).
Rule: TypeAlias = tuple[str | re.Pattern[str], Any]

Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
Distribution = Literal["truncated_normal", "normal", "uniform"]
Nonlinearity = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]
MXNetRndType = Literal["uniform", "gaussian"]
MXNetFactorType = Literal["avg", "in", "out"]

MODES: tuple[str, ...] = get_args(Mode)
DISTRIBUTIONS: tuple[str, ...] = get_args(Distribution)
NONLINEARITIES: tuple[str, ...] = get_args(Nonlinearity)
MXNET_RND_TYPES: tuple[str, ...] = get_args(MXNetRndType)
MXNET_FACTOR_TYPES: tuple[str, ...] = get_args(MXNetFactorType)
