"""jaxinit: neural-network weight initializers for JAX and Flax.

A drop-in superset of :mod:`jax.nn.initializers`: every initializer is a pure, hashable value
``init(key, shape, dtype=None, out_sharding=None) -> jax.Array`` that draws in float32 and casts
once, computes fans by one rule, and honours ``out_sharding``.
"""

from jax.nn.initializers import Initializer as Initializer

from jaxinit import recipes as recipes
from jaxinit._src.catalog.registry import get as get
from jaxinit._src.catalog.registry import names as names
from jaxinit._src.catalog.registry import preset_names as preset_names
from jaxinit._src.catalog.registry import registry_names as registry_names
from jaxinit._src.catalog.registry import serialize as serialize
from jaxinit._src.core.base import BaseInitializer as BaseInitializer
from jaxinit._src.core.config import config as config
from jaxinit._src.core.fans import Fans as Fans
from jaxinit._src.core.fans import compute_fans as compute_fans
from jaxinit._src.core.fans import einsum_axes as einsum_axes
from jaxinit._src.schemes.constant import Constant as constant
from jaxinit._src.schemes.constant import ones as ones
from jaxinit._src.schemes.constant import ones_init as ones_init
from jaxinit._src.schemes.constant import zeros as zeros
from jaxinit._src.schemes.constant import zeros_init as zeros_init
from jaxinit._src.schemes.elementwise import Normal as normal
from jaxinit._src.schemes.elementwise import TruncatedNormal as truncated_normal
from jaxinit._src.schemes.elementwise import Uniform as uniform
from jaxinit._src.schemes.elementwise import UniformRange as uniform_range
from jaxinit._src.schemes.frameworks import CaffeGaussian as caffe_gaussian
from jaxinit._src.schemes.frameworks import CaffeMSRA as caffe_msra
from jaxinit._src.schemes.frameworks import CaffeXavier as caffe_xavier
from jaxinit._src.schemes.frameworks import MSRAPrelu as msra_prelu
from jaxinit._src.schemes.frameworks import MXNetXavier as mxnet_xavier
from jaxinit._src.schemes.frameworks import UniformUnitScaling as uniform_unit_scaling
from jaxinit._src.schemes.orthogonal import DeltaOrthogonal as delta_orthogonal
from jaxinit._src.schemes.orthogonal import Orthogonal as orthogonal
from jaxinit._src.schemes.recurrent import GatedOrthogonal as gated_orthogonal
from jaxinit._src.schemes.recurrent import LstmForgetBias as lstm_forget_bias
from jaxinit._src.schemes.structured import Bilinear as bilinear
from jaxinit._src.schemes.structured import Dirac as dirac
from jaxinit._src.schemes.structured import Identity as identity
from jaxinit._src.schemes.structured import PositiveUnitball as positive_unitball
from jaxinit._src.schemes.structured import Sparse as sparse
from jaxinit._src.schemes.variance import GlorotNormal as glorot_normal
from jaxinit._src.schemes.variance import GlorotUniform as glorot_uniform
from jaxinit._src.schemes.variance import HeNormal as he_normal
from jaxinit._src.schemes.variance import HeUniform as he_uniform
from jaxinit._src.schemes.variance import LecunNormal as lecun_normal
from jaxinit._src.schemes.variance import LecunUniform as lecun_uniform
from jaxinit._src.schemes.variance import VarianceScaling as variance_scaling
from jaxinit._src.schemes.variance import calculate_gain as calculate_gain

__version__ = "0.1.0"

xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal

__all__ = [
    "BaseInitializer",
    "Fans",
    "Initializer",
    "bilinear",
    "caffe_gaussian",
    "caffe_msra",
    "caffe_xavier",
    "calculate_gain",
    "compute_fans",
    "config",
    "constant",
    "delta_orthogonal",
    "dirac",
    "einsum_axes",
    "get",
    "glorot_normal",
    "gated_orthogonal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "lstm_forget_bias",
    "msra_prelu",
    "mxnet_xavier",
    "names",
    "normal",
    "ones",
    "ones_init",
    "orthogonal",
    "positive_unitball",
    "preset_names",
    "recipes",
    "registry_names",
    "serialize",
    "sparse",
    "truncated_normal",
    "uniform",
    "uniform_range",
    "uniform_unit_scaling",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
    "zeros_init",
]
