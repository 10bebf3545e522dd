"""Fans (`compute_fans`) and einsum axes (`einsum_axes`): property tests against jax's rule.

jax's ``_compute_fans`` is the oracle for non-zero shapes; jaxinit additionally defines zero-size
shapes, checks axis ranges and names the argument at fault.
"""

from __future__ import annotations

import math
import string

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import stats
from hypothesis import given, settings
from hypothesis import strategies as st
from jax._src.nn.initializers import _compute_fans as jax_compute_fans

import jaxinit

SETTINGS = settings(max_examples=75, deadline=None, database=None)
KEY = jax.random.key(3)
AXIS_ARGS = ("in_axis", "out_axis", "batch_axis")


# -- strategies ---------------------------------------------------------------------------------


@st.composite
def axes_for(draw, rank: int, allow_empty: bool = True):
    """An int axis or a sequence of distinct axes (negative indices allowed)."""
    axis = st.integers(-rank, rank - 1)
    if draw(st.booleans()):
        return draw(axis)
    seq = draw(
        st.lists(
            axis, min_size=0 if allow_empty else 1, max_size=rank, unique_by=lambda a: a % rank
        )
    )
    return tuple(seq) if draw(st.booleans()) else seq


@st.composite
def shape_and_axes(draw, min_dim: int = 1, disjoint: bool | None = None):
    """A shape of rank 2..5 with in/out/batch axes (overlapping or not)."""
    rank = draw(st.integers(2, 5))
    shape = tuple(draw(st.lists(st.integers(min_dim, 6), min_size=rank, max_size=rank)))
    if disjoint is None:
        disjoint = draw(st.booleans())
    if not disjoint:
        return shape, {arg: draw(axes_for(rank)) for arg in AXIS_ARGS}
    # Disjoint: deal a permutation of the axes into in / out / batch / receptive field.
    perm = draw(st.permutations(range(rank)))
    cuts = sorted(draw(st.lists(st.integers(0, rank), min_size=3, max_size=3)))
    groups = (perm[: cuts[0]], perm[cuts[0] : cuts[1]], perm[cuts[1] : cuts[2]])
    axes = {}
    for arg, group in zip(AXIS_ARGS, groups, strict=True):
        group = [a - rank if draw(st.booleans()) else a for a in group]
        axes[arg] = group[0] if len(group) == 1 and draw(st.booleans()) else tuple(group)
    return shape, axes


def as_set(axes, rank: int) -> set[int]:
    return {a % rank for a in ((axes,) if isinstance(axes, int) else axes)}


# -- agreement with jax -------------------------------------------------------------------------


@SETTINGS
@given(shape_and_axes())
def test_agrees_with_jax(case):
    shape, axes = case
    fans = jaxinit.compute_fans(shape, **axes)
    assert (fans.fan_in, fans.fan_out) == jax_compute_fans(shape, **axes)


@SETTINGS
@given(shape_and_axes(disjoint=True))
def test_receptive_field_rule(case):
    """fan = prod(its axes) * prod(axes that are neither in, out nor batch)."""
    shape, axes = case
    rank = len(shape)
    ins, outs, batch = (as_set(axes[a], rank) for a in AXIS_ARGS)
    rf = math.prod(d for i, d in enumerate(shape) if i not in ins | outs | batch)
    fans = jaxinit.compute_fans(shape, **axes)
    assert fans.fan_in == math.prod(shape[i] for i in ins) * rf
    assert fans.fan_out == math.prod(shape[i] for i in outs) * rf


@SETTINGS
@given(shape_and_axes(disjoint=True), st.data())
def test_batch_axes_never_count(case, data):
    shape, axes = case
    batch = as_set(axes["batch_axis"], len(shape))
    resized = tuple(data.draw(st.integers(1, 9)) if i in batch else d for i, d in enumerate(shape))
    assert jaxinit.compute_fans(shape, **axes) == jaxinit.compute_fans(resized, **axes)


def test_stacked_experts_batch_axis():
    """A stacked MoE kernel (E, in, out): default axes fold E into fan_in, batch_axis=0 not."""
    assert jaxinit.compute_fans((8, 16, 32)).fan_in == 8 * 16
    assert jaxinit.compute_fans((8, 16, 32), batch_axis=0) == jaxinit.Fans(16, 32)


def test_groups_divide_fan_out_only():
    """A grouped conv kernel (3, 3, in/groups, out): each input feeds out/groups outputs per
    position. 4 groups of (3, 3, 4, 32): fan_out 9 * 8 = 72; depthwise (3, 3, 1, 16): 9."""
    assert jaxinit.compute_fans((3, 3, 4, 32), groups=4) == jaxinit.Fans(36, 72)
    assert jaxinit.compute_fans((3, 3, 1, 16), groups=16) == jaxinit.Fans(9, 9)
    assert jaxinit.compute_fans((3, 3, 4, 32), groups=1) == jaxinit.compute_fans((3, 3, 4, 32))
    w = jaxinit.glorot_normal(groups=16)(KEY, (3, 3, 1, 16))
    assert jaxinit.glorot_normal(groups=16).target_std((3, 3, 1, 16)) == pytest.approx(1 / 3)
    assert w.shape == (3, 3, 1, 16)


@pytest.mark.parametrize(
    "groups, error, match",
    [(3, ValueError, "`groups`=3 must divide"), (0, ValueError, "positive"),
     (2.0, TypeError, "positive int"), (True, TypeError, "positive int")],
)  # fmt: skip
def test_bad_groups_are_refused_naming_the_argument(groups, error, match):
    with pytest.raises(error, match=match):
        jaxinit.compute_fans((3, 3, 4, 32), groups=groups)
    if groups != 3:  # refused when the initializer is built
        with pytest.raises(error, match=match):
            jaxinit.he_normal(groups=groups)


def test_embed_trick_keeps_jax_float_rule():
    """out_axis=0 on (N, F) with the default in_axis=-2: in and out coincide, fan_in = F."""
    fans = jaxinit.compute_fans((1000, 64), out_axis=0)
    assert fans.fan_in == pytest.approx(64.0, rel=1e-15)
    assert (fans.fan_in, fans.fan_out) == jax_compute_fans((1000, 64), out_axis=0)


# -- zero-size shapes ---------------------------------------------------------------------------


@SETTINGS
@given(shape_and_axes(min_dim=0))
def test_zero_size_shapes_never_raise(case):
    shape, axes = case
    fans = jaxinit.compute_fans(shape, **axes)
    assert fans.fan_in >= 0 and fans.fan_out >= 0


@pytest.mark.parametrize("shape", [(0, 8), (3, 0, 4, 5), (0,), (4, 0, 0)])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
def test_zero_size_initializers_return_empty_arrays(shape, mode):
    w = jaxinit.variance_scaling(1.0, mode, "truncated_normal")(KEY, shape, jnp.bfloat16)
    assert w.shape == shape and w.dtype == jnp.bfloat16


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (7,)])
def test_rank_below_two_with_default_axes_says_how_to_pass_axes(shape):
    with pytest.raises(ValueError, match="in_axis") as info:
        jaxinit.compute_fans(shape)
    assert "out_axis" in str(info.value)  # shows the fix: in_axis=0, out_axis=()
    with pytest.raises(ValueError, match="in_axis"):
        jaxinit.lecun_normal()(KEY, shape)


def test_rank_one_with_explicit_axes_works():
    assert jaxinit.compute_fans((7,), in_axis=0, out_axis=()) == jaxinit.Fans(7, 1)


@SETTINGS
@given(st.integers(1, 5), st.sampled_from(AXIS_ARGS), st.integers(0, 4), st.booleans(), st.data())
def test_axis_out_of_range_names_the_argument(rank, arg, excess, negative, data):
    shape = (3,) * rank
    bad = -rank - 1 - excess if negative else rank + excess
    axes = {"in_axis": 0, "out_axis": rank - 1, "batch_axis": ()}
    axes[arg] = bad if data.draw(st.booleans()) else (bad,)
    with pytest.raises(ValueError, match=f"`{arg}[`=]") as info:  # `in_axis` or `in_axis=-2`
        jaxinit.compute_fans(shape, **axes)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("arg", AXIS_ARGS)
def test_initializer_call_with_axis_out_of_range_names_the_argument(arg):
    axes = {"in_axis": 0, "out_axis": 1, "batch_axis": ()} | {arg: 5}
    with pytest.raises(ValueError, match=f"`{arg}`"):
        jaxinit.he_normal(**axes)(KEY, (4, 8))


# -- einsum_axes --------------------------------------------------------------------------------

EINSUM_EXAMPLES = [
    ("bd,dhk->bhk", (0,), (1, 2), ()),  # the example of docs/design.md, "Fans"
    ("ebd,edf->ebf", (1,), (2,), (0,)),  # experts: e is a batch axis of the kernel
    ("...d,dk->...k", (0,), (1,), ()),
    ("...hd,hdk->...k", (0, 1), (2,), ()),
    ("btnh,nhd->btd", (0, 1), (2,), ()),  # attention output projection
    ("b t d , d n h -> b t n h", (0,), (1, 2), ()),  # spaces are ignored
    ("bd,d->b", (0,), (), ()),
]


@pytest.mark.parametrize(("spec", "ins", "outs", "batch"), EINSUM_EXAMPLES)
def test_einsum_axes_examples(spec, ins, outs, batch):
    assert jaxinit.einsum_axes(spec) == {"in_axis": ins, "out_axis": outs, "batch_axis": batch}


@pytest.mark.parametrize(
    "spec",
    [
        "bd,dk",  # no output
        "bd->bk",  # one operand
        "bd,dk,kf->bf",  # three operands
        "bd,ddk->bk",  # repeated kernel label
        "bd,dzk->bk",  # z is in neither the first operand nor the output
        "b.d,dk->bk",  # stray dot
        "bd,d1->b1",  # not a letter
        "",
    ],
)
def test_einsum_axes_malformed_specs_raise(spec):
    with pytest.raises(ValueError, match="`spec`"):
        jaxinit.einsum_axes(spec)


def test_einsum_axes_non_string_raises_type_error():
    with pytest.raises(TypeError, match="`spec`"):
        jaxinit.einsum_axes(("bd", "dk"))  # type: ignore[arg-type]


@st.composite
def einsum_specs(draw):
    """A random valid two-operand spec and the kernel's true in/out/batch axes."""
    labels = draw(st.permutations(string.ascii_lowercase[:10]))
    n_in, n_out, n_batch, n_lhs = (draw(st.integers(0, 2)) for _ in range(4))
    it = iter(labels)
    ins, outs, batch, lhs_only = (
        [next(it) for _ in range(n)] for n in (n_in, n_out, n_batch, n_lhs)
    )
    kernel = draw(st.permutations(ins + outs + batch))
    lhs = draw(st.permutations(lhs_only + ins + batch))
    out = draw(st.permutations(lhs_only + batch + outs))
    spec = f"{''.join(lhs)},{''.join(kernel)}->{''.join(out)}"
    expect = {
        "in_axis": tuple(i for i, c in enumerate(kernel) if c in ins),
        "out_axis": tuple(i for i, c in enumerate(kernel) if c in outs),
        "batch_axis": tuple(i for i, c in enumerate(kernel) if c in batch),
    }
    return spec, expect, len(lhs), len(kernel)


@SETTINGS
@given(einsum_specs())
def test_einsum_axes_random_specs(case):
    spec, expect, lhs_rank, kernel_rank = case
    np.einsum(spec, np.ones((2,) * lhs_rank), np.ones((2,) * kernel_rank))  # a valid einsum
    assert jaxinit.einsum_axes(spec) == expect


@pytest.mark.parametrize(
    ("spec", "shape", "fan_in"),
    [("bd,dhk->bhk", (256, 16, 64), 256), ("ebd,edf->ebf", (4, 512, 128), 512)],
)
def test_einsum_axes_give_fan_in_std(spec, shape, fan_in):
    """`variance_scaling(1, "fan_in", "normal", **einsum_axes(spec))` has std 1/sqrt(d)."""
    init = jaxinit.variance_scaling(1.0, "fan_in", "normal", **jaxinit.einsum_axes(spec))
    w = init(KEY, shape)
    sigma = 1 / math.sqrt(fan_in)
    stats.assert_std(w, sigma, stats.KURTOSIS_NORMAL, spec)
    stats.assert_mean(w, 0.0, sigma, spec)
