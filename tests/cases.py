"""The one registry of test cases: every public initializer, with the shapes it is tried on.

Adding an initializer to jaxinit means adding one line here; the conformance, sharding and
serialization tests then cover it. What an initializer *is* -- whether it uses the key, whether
it takes complex dtypes -- is asked of its class (`random`, `complex_ok`), never restated here.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

import jaxinit

DENSE = (16, 32)
CONV = (3, 3, 8, 16)
STACKED = (4, 16, 32)
ZERO = ((0, 8), (3, 0, 4, 5))
GENERIC = (DENSE, CONV, STACKED, *ZERO)

REAL = (jnp.float32, jnp.bfloat16, jnp.float16)
FLOAT8 = (jnp.float8_e4m3fn, jnp.float8_e5m2)
COMPLEX = (jnp.complex64,)


@dataclasses.dataclass(frozen=True)
class Case:
    """One initializer under test."""

    id: str
    init: jaxinit.BaseInitializer
    shapes: tuple[tuple[int, ...], ...] = GENERIC

    @property
    def random(self) -> bool:
        return type(self.init).random

    @property
    def complex_ok(self) -> bool:
        return type(self.init).complex_ok

    @property
    def dtypes(self) -> tuple:
        return REAL + FLOAT8 + (COMPLEX if self.complex_ok else ())


CONV_ONLY = (CONV, (3, 8, 16), (2, 3, 3, 4, 8), (3, 3, 0, 8))

CASES: tuple[Case, ...] = (
    Case("zeros", jaxinit.zeros),
    Case("ones", jaxinit.ones),
    Case("constant", jaxinit.constant(-0.5)),
    Case(
        "constant_array",
        jaxinit.constant(np.arange(32.0) / 8),
        shapes=(DENSE, STACKED, (0, 32)),
    ),
    Case("uniform", jaxinit.uniform(0.1)),
    Case("uniform_range", jaxinit.uniform_range(-0.2, 0.3)),
    Case("normal", jaxinit.normal(0.02)),
    Case("normal_mean", jaxinit.normal(0.5, mean=1.0)),
    Case("truncated_normal", jaxinit.truncated_normal(0.5)),
    Case("truncated_normal_post", jaxinit.truncated_normal(0.5, post_truncation=True)),
    Case(
        "truncated_normal_abs",
        jaxinit.truncated_normal(0.5, lower=-0.3, upper=0.6, absolute_bounds=True),
    ),
    Case("variance_scaling_tn", jaxinit.variance_scaling(0.5, "fan_avg", "truncated_normal")),
    Case("variance_scaling_n", jaxinit.variance_scaling(2.0, "fan_out", "normal")),
    Case("variance_scaling_u", jaxinit.variance_scaling(1.0, "fan_geo_avg", "uniform")),
    Case("glorot_uniform", jaxinit.glorot_uniform()),
    Case("glorot_normal", jaxinit.glorot_normal()),
    Case("lecun_uniform", jaxinit.lecun_uniform()),
    Case("lecun_normal", jaxinit.lecun_normal()),
    Case("he_uniform", jaxinit.he_uniform()),
    Case("he_normal", jaxinit.he_normal()),
    Case("he_normal_leaky", jaxinit.he_normal(nonlinearity="leaky_relu", negative_slope=0.2)),
    Case(
        "he_stacked", jaxinit.he_normal(batch_axis=0), shapes=(STACKED, (5, 3, 3, 2, 4), (0, 4, 4))
    ),
    Case("orthogonal", jaxinit.orthogonal()),
    Case("orthogonal_col0", jaxinit.orthogonal(2.0, column_axis=0)),
    Case(
        "orthogonal_stacked",
        jaxinit.orthogonal(batch_axis=0),
        shapes=(STACKED, (8, 3, 16, 8), (0, 4, 4)),
    ),
    Case("delta_orthogonal", jaxinit.delta_orthogonal(), shapes=CONV_ONLY),
    Case("uniform_unit_scaling", jaxinit.uniform_unit_scaling(1.43)),
    Case("mxnet_xavier", jaxinit.mxnet_xavier("gaussian", "in", 2.0)),
    Case("msra_prelu", jaxinit.msra_prelu()),
    Case("caffe_xavier", jaxinit.caffe_xavier("average")),
    Case("caffe_msra", jaxinit.caffe_msra("fan_out")),
    Case("caffe_gaussian", jaxinit.caffe_gaussian(0.01, sparse=3)),
    Case("identity", jaxinit.identity(2.0)),
    Case("dirac", jaxinit.dirac(groups=2), shapes=CONV_ONLY),
    Case("bilinear", jaxinit.bilinear(), shapes=CONV_ONLY),
    Case("positive_unitball", jaxinit.positive_unitball()),
    Case("sparse", jaxinit.sparse(0.25)),
    Case("sparse_k", jaxinit.sparse(None, 1.0, nonzeros=2)),
    Case("orthogonal_gated", jaxinit.get("gated_orthogonal", gates=2)),
    Case("lstm_forget_bias", jaxinit.get("lstm_forget_bias")),
)

BY_ID = {c.id: c for c in CASES}


def nonzero_shapes(case: Case) -> tuple[tuple[int, ...], ...]:
    return tuple(s for s in case.shapes if 0 not in s)


def grid(*, dtypes: bool = True, zero: bool = True):
    """(case, shape, dtype) triples for parametrize, with readable ids."""
    import pytest

    out = []
    for case in CASES:
        shapes = case.shapes if zero else nonzero_shapes(case)
        first = nonzero_shapes(case)[0]
        smallest = min(nonzero_shapes(case), key=lambda s: (math.prod(s), len(s)))
        for shape in shapes:
            # Every dtype on the first shape; float32 and bfloat16 on the others (compile time).
            all_dtypes = case.dtypes if shape == first else (jnp.float32, jnp.bfloat16)
            for dt in all_dtypes if dtypes else (jnp.float32,):
                name = np.dtype(dt).name
                # The fast lane keeps each case's smallest shape in float32 (fewest, cheapest
                # compiles); the rest is `slow`.
                fast = shape == smallest and dt == jnp.float32
                marks = () if fast else (pytest.mark.slow,)
                out.append(
                    pytest.param(case, shape, dt, id=f"{case.id}-{shape}-{name}", marks=marks)
                )
    return out
