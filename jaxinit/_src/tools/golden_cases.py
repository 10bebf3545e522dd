"""The canonical golden case set: which initializers, parameters, shapes and dtypes are checked.

Every registered initializer at least once, with explicit parameters, on a few small shapes, in
float32 and bfloat16 -- and in complex64 where its class accepts complex dtypes -- each with a
fixed key derived from a SHA-256 of the case id. Each case belongs to a *family* that says which
tier it can promise across backends (`FAMILIES`). What an initializer *is* comes from its class,
not from this table: ``type(init).random`` (values depend on the key) and ``type(init).complex_ok``
(complex dtypes accepted); `Variant.dtypes` refuses a table that contradicts them.

The recorded outputs, their comparison and ``jaxinit verify`` live in `jaxinit._src.tools.golden`.
Changing this set changes the goldens: regenerate them with ``python scripts/make_goldens.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

from jaxinit._src.catalog import registry
from jaxinit._src.core.base import BaseInitializer


@dataclasses.dataclass(frozen=True)
class Family:
    """What an initializer family can promise across backends, and why."""

    expected: str
    note: str


FAMILIES: dict[str, Family] = {
    "constant": Family("bitwise", "no randomness; exact integer and float arithmetic"),
    "uniform": Family(
        "bitwise",
        "threefry bits -> [0, 1) by the exponent trick, then an exact or once-rounded scale",
    ),
    "normal": Family(
        "<=2ulp",
        "aim bitwise; the erf_inv/erf polynomial after the bits may be FMA-contracted differently "
        "per backend",
    ),
    "reduction": Family(
        "<=1e-5",
        "divided by a per-unit sum: the backend's reduction and division set the last bits",
    ),
    "complex": Family(
        "<=1e-5", "radius and angle go through the backend's own exp, log, sin and cos"
    ),
    "orthogonal": Family(
        "<=1e-5",
        "Householder reflections run on the backend's own matmuls: a tolerance tier across "
        "backends (docs/determinism.md)",
    ),
}

DENSE = (16, 24)
CONV = (3, 3, 4, 8)
STACKED = (4, 8, 16)
#: Where the rank matters (fans, batch axes, matrix axes): a stacked shape too.
GENERAL = (DENSE, CONV, STACKED)
#: Elementwise draws are shape-agnostic (drawn flat); two shapes keep the set quick to compile.
FLAT = (DENSE, CONV)
#: One-line specializations of a scheme covered above on every shape: the dense shape is enough.
ONE = (DENSE,)
CONV_ONLY = (CONV, (3, 4, 8))
REAL_DTYPES = ("float32", "bfloat16")
COMPLEX_DTYPE = "complex64"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One initializer with explicit parameters, the shapes it is checked on, its family."""

    name: str
    factory: str
    params: Mapping[str, Any]
    family: str
    shapes: tuple[tuple[int, ...], ...]
    #: Checked in the real dtypes only, although the class accepts complex ones: a specialization
    #: whose complex path another variant covers, or a fill kept out to keep the set small.
    real_only: bool

    def build(self) -> BaseInitializer:
        return registry.get(self.factory, **self.params)

    @property
    def cls(self) -> type[BaseInitializer]:
        """The initializer class, which knows `random` and `complex_ok`."""
        return type(self.build())

    def dtypes(self) -> tuple[str, ...]:
        """float32 and bfloat16; complex64 too if the class accepts it and not `real_only`.

        Raises:
          ValueError: if the table contradicts the class: `real_only` on a real-only class, or
            the ``constant`` family for a random initializer (or another family for a fill).
        """
        cls = self.cls
        if self.real_only and not cls.complex_ok:
            raise ValueError(
                f"golden variant {self.name!r}: real_only is redundant, {cls.name} is real."
            )
        if (self.family == "constant") == cls.random:
            raise ValueError(
                f"golden variant {self.name!r}: family {self.family!r} but {cls.name}.random is "
                f"{cls.random} (the constant family is exactly the non-random initializers)."
            )
        return (
            (*REAL_DTYPES, COMPLEX_DTYPE) if cls.complex_ok and not self.real_only else REAL_DTYPES
        )


def _v(
    name: str,
    family: str,
    shapes: tuple[tuple[int, ...], ...] = FLAT,
    *,
    factory: str | None = None,
    real_only: bool = False,
    **params: Any,
) -> Variant:
    return Variant(name, factory or name, params, family, shapes, real_only)


VS = "variance_scaling"
#: Every registered initializer at least once (a test checks it), with explicit parameters.
VARIANTS: tuple[Variant, ...] = (
    _v("zeros", "constant", GENERAL),
    _v("ones", "constant", GENERAL),
    _v("constant", "constant", GENERAL, value=0.5),
    _v("uniform", "uniform", scale=0.1),
    _v("uniform_range", "uniform", minval=-0.2, maxval=0.3),
    _v("normal", "normal", stddev=0.02),
    _v("normal_mean", "normal", factory="normal", stddev=0.5, mean=1.0, real_only=True),
    _v("truncated_normal", "normal", stddev=0.5),
    _v("truncated_normal_post", "normal", factory="truncated_normal", post_truncation=True),
    _v(
        "truncated_normal_abs",
        "normal",
        factory="truncated_normal",
        stddev=0.5,
        lower=-0.3,
        upper=0.6,
        absolute_bounds=True,
    ),
    _v(
        "vs_truncated_normal",
        "normal",
        GENERAL,
        factory=VS,
        scale=0.5,
        mode="fan_avg",
        distribution="truncated_normal",
    ),
    _v(
        "vs_normal",
        "normal",
        GENERAL,
        factory=VS,
        scale=2.0,
        mode="fan_in",
        distribution="normal",
    ),
    _v(
        "vs_uniform",
        "uniform",
        GENERAL,
        factory=VS,
        scale=1.0,
        mode="fan_out",
        distribution="uniform",
    ),
    _v(
        "vs_geo_normal",
        "normal",
        ONE,
        factory=VS,
        scale=1.0,
        mode="fan_geo_avg",
        distribution="normal",
        real_only=True,
    ),
    _v("glorot_uniform", "uniform", ONE),
    _v("glorot_normal", "normal", ONE),
    _v("lecun_uniform", "uniform", ONE),
    _v("lecun_normal", "normal", ONE),
    _v("he_uniform", "uniform", ONE),
    _v("he_normal", "normal", ONE),
    _v(
        "he_normal_leaky",
        "normal",
        ONE,
        factory="he_normal",
        nonlinearity="leaky_relu",
        negative_slope=0.2,
        real_only=True,
    ),
    _v(
        "he_normal_batch",
        "normal",
        (STACKED, (2, 3, 4, 8)),
        factory="he_normal",
        batch_axis=0,
        real_only=True,
    ),
    _v("orthogonal", "orthogonal", GENERAL),
    _v("gated_orthogonal", "orthogonal", GENERAL, gates=2, real_only=True),
    _v("lstm_forget_bias", "constant", GENERAL, real_only=True),
    _v(
        "orthogonal_col0",
        "orthogonal",
        factory="orthogonal",
        scale=2.0,
        column_axis=0,
        real_only=True,
    ),
    _v("delta_orthogonal", "orthogonal", CONV_ONLY),
    _v("uniform_unit_scaling", "uniform", factor=1.43),
    _v("mxnet_xavier", "uniform", ONE, real_only=True),
    _v(
        "mxnet_xavier_gaussian",
        "normal",
        ONE,
        factory="mxnet_xavier",
        rnd_type="gaussian",
        factor_type="in",
        magnitude=2.0,
        real_only=True,
    ),
    _v("msra_prelu", "normal", ONE, real_only=True),
    _v("caffe_xavier", "uniform", ONE, variance_norm="average", real_only=True),
    _v("caffe_msra", "normal", ONE, variance_norm="fan_out", real_only=True),
    _v("caffe_gaussian", "normal", ONE, std=0.01, sparse=3),
    _v("identity", "constant", GENERAL, scale=2.0),
    _v("dirac", "constant", CONV_ONLY, groups=2, real_only=True),
    _v("bilinear", "constant", CONV_ONLY, real_only=True),
    _v("positive_unitball", "reduction"),
    _v("sparse", "normal", sparsity=0.5),
    _v("sparse_k", "normal", ONE, factory="sparse", sparsity=None, stddev=1.0, nonzeros=2),
)


def case_id(variant: str, shape: tuple[int, ...], dtype: str) -> str:
    return f"{variant}/{'x'.join(map(str, shape))}/{dtype}"


def case_seed(cid: str) -> int:
    """A seed from the case id, stable across processes and Python versions (not `hash`)."""
    return int.from_bytes(hashlib.sha256(cid.encode()).digest()[:4], "little") & 0x7FFFFFFF


def family_of(variant: Variant, dtype: str) -> str:
    """The family of a case: complex outputs of random draws go through the backend's exp, log,
    sin and cos (the ``complex`` family), except orthogonal ones, which QR dominates."""
    if dtype == COMPLEX_DTYPE and variant.cls.random and variant.family != "orthogonal":
        return "complex"
    return variant.family


@dataclasses.dataclass(frozen=True)
class Case:
    """One canonical case: an initializer, a shape, a dtype and the key derived from the id."""

    id: str
    variant: str
    init: BaseInitializer
    shape: tuple[int, ...]
    dtype: str
    family: str

    @property
    def seed(self) -> int:
        return case_seed(self.id)


def canonical_cases() -> list[Case]:
    """The canonical case set, sorted by id."""
    cases = []
    for v in VARIANTS:
        init = v.build()
        dtypes = v.dtypes()
        for shape in v.shapes:
            for dt in dtypes:
                cid = case_id(v.name, shape, dt)
                cases.append(Case(cid, v.name, init, shape, dt, family_of(v, dt)))
    return sorted(cases, key=lambda c: c.id)
