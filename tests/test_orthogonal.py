"""Orthogonal and delta-orthogonal: orthonormality, Haar moments, layouts, dtypes."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinit
from jaxinit._src.core import sharding
from jaxinit._src.schemes import householder, orthogonal
from jaxinit._src.schemes.orthogonal import haar

KEY = jax.random.key(0)
N_DRAWS = 4096
Z = 6.0  # standard errors allowed by every moment test below
#: The determinism contract's tier 1' (docs/determinism.md): one Haar matrix formed by the
#: sharded (panel by panel) and single-device (blocks) paths, which associate sums differently.
TIER_1_PRIME = 2e-6


def _gram_error(q: np.ndarray, rows: bool) -> float:
    q = q.astype(np.complex128 if np.iscomplexobj(q) else np.float64)
    g = q @ q.conj().T if rows else q.conj().T @ q
    return float(np.abs(g - np.eye(g.shape[0])).max())


@pytest.mark.parametrize("shape", [(64, 64), (128, 32), (32, 128), (1, 7), (7, 1)])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
def test_matrices_have_orthonormal_rows_or_columns(shape, dtype):
    q = np.asarray(jaxinit.orthogonal()(KEY, shape, dtype))
    assert _gram_error(q, rows=shape[0] <= shape[1]) <= 1e-5


@pytest.mark.parametrize("column_axis", [-1, 0, 1, 2])
def test_column_axis_of_nd_kernels(column_axis):
    shape = (3, 4, 5, 60)
    w = np.asarray(jaxinit.orthogonal(column_axis=column_axis)(KEY, shape))
    cols = shape[column_axis]
    m = np.moveaxis(w, column_axis, -1).reshape(-1, cols)
    assert _gram_error(m, rows=m.shape[0] <= cols) <= 1e-5


def test_scale_multiplies():
    a = jaxinit.orthogonal(2.5)(KEY, (16, 16))
    b = jaxinit.orthogonal()(KEY, (16, 16))
    np.testing.assert_allclose(np.asarray(a), 2.5 * np.asarray(b), rtol=1e-6)


def _trace_stats(qs: np.ndarray) -> tuple[float, float]:
    tr = np.trace(qs, axis1=-2, axis2=-1)
    return float(np.mean(tr).real), float(np.mean(np.abs(tr) ** 2))


def test_haar_moments_real():
    """For Haar O(n), n >= 4: E tr = 0, E tr^2 = 1, Var tr^2 = 2, and det = +-1 equally."""
    keys = jax.random.split(KEY, N_DRAWS)
    qs = np.asarray(jax.vmap(lambda k: jaxinit.orthogonal()(k, (4, 4)))(keys), np.float64)
    mean_tr, mean_tr2 = _trace_stats(qs)
    assert abs(mean_tr) < Z / np.sqrt(N_DRAWS)
    assert abs(mean_tr2 - 1) < Z * np.sqrt(2 / N_DRAWS)
    pos = float(np.mean(np.linalg.det(qs) > 0))
    assert abs(pos - 0.5) < Z * 0.5 / np.sqrt(N_DRAWS)


def test_haar_moments_complex_unitary():
    """For Haar U(n), n >= 2: E tr = 0 and E |tr|^2 = 1 (Var |tr|^2 = 1)."""
    keys = jax.random.split(KEY, N_DRAWS)
    qs = np.asarray(jax.vmap(lambda k: jaxinit.orthogonal()(k, (4, 4), jnp.complex64))(keys))
    mean_tr, mean_tr2 = _trace_stats(qs)
    tr = np.trace(qs, axis1=-2, axis2=-1)
    assert abs(mean_tr) < Z / np.sqrt(N_DRAWS)
    assert abs(float(np.mean(tr.imag))) < Z / np.sqrt(N_DRAWS)
    assert abs(mean_tr2 - 1) < Z / np.sqrt(N_DRAWS)


def test_moment_test_detects_a_non_haar_sampler():
    """Plain QR without the sign fix is not Haar; the moment test above must notice."""
    keys = jax.random.split(KEY, N_DRAWS)

    def biased(k):
        q, _ = jnp.linalg.qr(jax.random.normal(k, (4, 4)))
        return q

    qs = np.asarray(jax.vmap(biased)(keys), np.float64)
    mean_tr, mean_tr2 = _trace_stats(qs)
    assert abs(mean_tr) > Z / np.sqrt(N_DRAWS) or abs(mean_tr2 - 1) > Z * np.sqrt(2 / N_DRAWS)


@pytest.mark.slow  # over 5 s: the fast lane leaves it out
def test_haar_helper_is_sign_safe_and_semi_orthogonal():
    q = np.asarray(haar(KEY, 3, 9, jnp.float32))
    assert q.shape == (3, 9) and _gram_error(q, rows=True) <= 1e-5


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float8_e4m3fn])
def test_low_precision_output_uses_float32_qr(dtype):
    w = jaxinit.orthogonal()(KEY, (32, 32), dtype)
    ref = jaxinit.orthogonal()(KEY, (32, 32), jnp.float32).astype(dtype)
    np.testing.assert_array_equal(np.asarray(w, np.float32), np.asarray(ref, np.float32))


def test_float64_under_x64_is_orthogonal_to_double_precision():
    with jax.enable_x64(True):
        q = np.asarray(jaxinit.orthogonal()(KEY, (64, 64)))
    assert q.dtype == np.float64 and _gram_error(q, rows=True) <= 1e-12


@pytest.mark.parametrize("shape", [(3, 8, 16), (3, 3, 8, 8), (4, 4, 8, 16), (3, 3, 3, 4, 4)])
def test_delta_orthogonal_centre_tap(shape):
    w = np.asarray(jaxinit.delta_orthogonal(1.5)(KEY, shape))
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    c = w[centre] / 1.5
    assert _gram_error(c, rows=True) <= 1e-5
    rest = w.copy()
    rest[centre] = 0
    assert not rest.any()


def test_delta_orthogonal_preserves_norm_under_same_convolution():
    w = jaxinit.delta_orthogonal()(KEY, (3, 3, 8, 8))
    x = jax.random.normal(jax.random.key(1), (2, 10, 10, 8))
    y = jax.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(
        np.linalg.norm(np.asarray(y), axis=-1), np.linalg.norm(np.asarray(x), axis=-1), rtol=1e-5
    )


def test_delta_orthogonal_errors():
    with pytest.raises(ValueError, match=r"in <= out"):
        jaxinit.delta_orthogonal()(KEY, (3, 3, 16, 8))
    with pytest.raises(ValueError, match="rank 3, 4 or 5"):
        jaxinit.delta_orthogonal()(KEY, (16, 16))
    with pytest.raises(ValueError, match="`column_axis`"):
        jaxinit.delta_orthogonal(column_axis=2)
    with pytest.raises(ValueError, match="rank >= 2"):
        jaxinit.orthogonal()(KEY, (16,))


# -- small matrices, every key --------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(60, 2), (24, 20), (2, 60)])
def test_small_matrices_are_orthogonal_to_1e6_for_every_key(shape):
    """The accuracy jax's and torch's QR reach on small float32 matrices (their worst over these
    keys: 4.6e-7 / 6.9e-7 at 60x2 / 24x20), for 500 keys; this was exceeded for 1% of keys when
    tau came from a summed |u|^2."""
    init = jaxinit.orthogonal()
    worst = max(
        _gram_error(np.asarray(init(jax.random.key(i), shape)), rows=shape[0] < shape[1])
        for i in range(500)
    )
    assert worst <= 1e-6


# -- a program whose size does not grow with the matrix ------------------------------------------
def _program_lines(n: int, m: int) -> int:
    lowered = jax.jit(lambda k: householder.tall(k, n, m, jnp.float32)).lower(KEY)
    return len(lowered.as_text().splitlines())


def test_program_size_does_not_grow_with_the_matrix():
    """Steps are applied by loops (at most MAX_STAGES of them), never unrolled per block: the
    program of a 32768^2 matrix is the 16384^2 one's, and no size has a larger one."""
    assert len(householder.stages(16384, 16384)) == householder.MAX_STAGES
    big = _program_lines(16384, 16384)
    assert _program_lines(32768, 32768) == big
    assert all(_program_lines(n, n) <= big for n in (256, 1024, 2048, 4096, 8192))
    assert _program_lines(16384, 300) <= big


@pytest.fixture
def patch(monkeypatch):
    """``patch(NAME=value, ...)`` sets `householder` constants for one test, and the cached
    `stages` and `chunks` are recomputed for them (and again after the test)."""

    def clear() -> None:
        householder.stages.cache_clear()
        householder.chunks.cache_clear()

    def set_constants(**constants) -> None:
        for name, value in constants.items():
            monkeypatch.setattr(householder, name, value)
        clear()

    yield set_constants
    clear()


@pytest.mark.parametrize(
    ("n", "m", "dtype"),
    [(300, 300, jnp.float32), (700, 260, jnp.float32), (520, 390, jnp.float32),
     (300, 260, jnp.complex64)],
)  # fmt: skip
def test_two_blocks_per_step_form_the_same_matrix(patch, n, m, dtype):
    """From GROUP_FROM columns on, `tall` applies two blocks per step, their T merged by
    `group_t` (an odd last block paired with the identity): the matrix of one block per step
    and of the sharded path's panels, to rounding (tier 1'), and orthonormal. Lowered here so
    that small matrices take that path."""
    key = jax.random.key(11)
    patch(GROUP_FROM=10**9)
    one = _tall(n, m, dtype, key=key)
    patch(GROUP_FROM=householder.BLOCK + 1)
    two = _tall(n, m, dtype, key=key)
    assert householder.step_width(m) == 2 * householder.BLOCK
    panels = householder.tall_columns(key, n, m, jnp.arange(m), dtype)
    np.testing.assert_allclose(two, one, rtol=0, atol=TIER_1_PRIME)
    np.testing.assert_allclose(two, np.asarray(panels), rtol=0, atol=TIER_1_PRIME)
    assert _gram_error(two, rows=False) <= 1e-5


def _tall(n: int, m: int, dtype, *, key=KEY, first=0) -> np.ndarray:
    return np.asarray(jax.jit(lambda k, i: householder.tall(k, n, m, dtype, i))(key, first))


def _chunked(patch, n: int, m: int, dtype, chunked: bool, **where) -> np.ndarray:
    """`householder.tall` with its draws in `chunks` or as full-height steps, whatever the
    size: `CHUNKED_SECONDS` set to 0 or infinity."""
    patch(CHUNKED_SECONDS=0.0 if chunked else float("inf"))
    assert householder.chunked(n, m) == chunked
    return _tall(n, m, dtype, **where)


@pytest.mark.parametrize(
    ("n", "m", "dtype"),
    [(300, 300, jnp.float32), (700, 130, jnp.float32), (900, 900, jnp.float32),
     (300, 260, jnp.complex64), (260, 260, jnp.float64)],
)  # fmt: skip
def test_chunked_draws_form_the_same_matrix(patch, n, m, dtype):
    """Large matrices draw only the rows each step's run works on (`chunks`) and take each
    step's Gram matrix, norms and diagonal from sums over its chunks: the matrix of
    full-height steps to rounding (tier 1'), orthonormal -- also with several runs, two
    blocks per step, and draws that are not one stream (float64, complex)."""
    if (n, m) == (900, 900):
        patch(GROUP_FROM=householder.BLOCK + 1, RUN_SECONDS=0.0)
        assert householder.step_width(m) == 2 * householder.BLOCK
        assert len(householder.stages(n, m)) == 4  # one run per step
    with jax.enable_x64(dtype == jnp.float64):
        full = _chunked(patch, n, m, dtype, False)
        chunks = _chunked(patch, n, m, dtype, True)
    tol = TIER_1_PRIME if dtype != jnp.float64 else F64_ORTHONORMAL
    np.testing.assert_allclose(chunks, full, rtol=0, atol=tol)
    assert _gram_error(chunks, rows=False) <= (1e-5 if dtype != jnp.float64 else F64_ORTHONORMAL)


def test_chunked_draws_of_a_stack_member_are_its_own(patch):
    """`stack` passes matrix i's first panel traced: the chunked draws count from it."""
    n, m, key = 300, 200, jax.random.key(3)
    p = householder.panels(n, m)
    second = _chunked(patch, n, m, jnp.float32, True, key=key, first=p)
    full = _chunked(patch, n, m, jnp.float32, False, key=key, first=p)
    np.testing.assert_allclose(second, full, rtol=0, atol=TIER_1_PRIME)
    assert np.abs(second - _chunked(patch, n, m, jnp.float32, True, key=key)).max() > 0.1


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
def test_one_step_runs_skip_the_identity_and_form_the_same_matrix(patch, dtype):
    """A run of one step starts from [[D, 0], [0, y]] and takes U^H of it as [U1^H D, U2^H y]
    (no product over the identity and zero blocks): the matrix of one loop over all steps
    to rounding, and orthonormal."""
    n, m = 700, 520
    patch(RUN_SECONDS=0.0)
    assert householder.stages(n, m) == ((0, 0), (1, 1), (2, 2), (3, 3), (4, 4))
    split = _tall(n, m, dtype)
    patch(RUN_SECONDS=1e9)
    assert len(householder.stages(n, m)) == 1
    loop = _tall(n, m, dtype)
    np.testing.assert_allclose(split, loop, rtol=0, atol=TIER_1_PRIME)
    assert _gram_error(split, rows=False) <= 1e-5


@pytest.mark.parametrize(("n", "m"), [(300, 300), (4096, 4096), (5000, 3000), (16384, 16384)])
def test_chunks_hold_each_steps_rows_of_its_run_once(n, m):
    """Step k's chunks are consecutive and hold rows s0..n-1 of its run (and at most one
    chunk's padding past n), its diagonal block inside them; at most MAX_CHUNKS per step."""
    c, step, row0, first = householder.chunks(n, m)
    w = householder.step_width(m)
    assert c % w == 0
    start = {k: k0 * w for k0, k1 in householder.stages(n, m) for k in range(k0, k1 + 1)}
    for k in range(-(-m // w)):
        mine = np.flatnonzero(step == k)
        assert mine[0] == first[k] and np.all(np.diff(mine) == 1)
        assert len(mine) <= householder.MAX_CHUNKS
        np.testing.assert_array_equal(row0[mine], start[k] + c * np.arange(len(mine)))
        assert row0[mine[-1]] < n <= row0[mine[-1]] + c
        assert start[k] <= k * w < n


def test_only_large_matrices_are_chunked():
    """The chunked layout saves part of a large matrix's run and costs some compilation: from
    a modeled second of run time on."""
    assert not householder.chunked(2048, 2048)
    assert not householder.chunked(4096, 1024)
    assert householder.chunked(3072, 3072)
    assert householder.chunked(4096, 4096)
    assert not householder.chunked(100_000, 40)  # one block of fewer than PANEL reflectors


@pytest.mark.parametrize(("n", "m"), [(7, 3), (300, 200), (2048, 2048), (4096, 700), (9000, 130)])
def test_stages_cover_every_step_once_in_order(n, m):
    runs = householder.stages(n, m)
    count = -(-m // householder.step_width(m))
    assert 1 <= len(runs) <= householder.MAX_STAGES
    assert runs[0][0] == 0 and runs[-1][1] == count - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(runs))
    assert all(first <= last for first, last in runs)


@pytest.mark.parametrize("shape", [(300, 200), (4000, 1000), (130, 1300)])
def test_eager_with_cpu_compiler_options_equals_jit_bitwise(shape):
    """The eager call compiles with `orthogonal.CPU_OPTIONS`; the caller's jit does not: same
    bits, including matrices applied in several stages."""
    n, m = max(shape), min(shape)
    if shape == (4000, 1000):
        assert len(householder.stages(n, m)) >= 2
    init = jaxinit.orthogonal()
    eager = init(KEY, shape)
    jitted = jax.jit(lambda k: init(k, shape))(KEY)
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(jitted))


#: max|QᴴQ - I| allowed in float64/complex128: 2^-52 times a few hundred (n and the blocks).
F64_ORTHONORMAL = 1e-12


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.complex128])
@pytest.mark.parametrize(
    ("init", "shape"),
    [
        (jaxinit.orthogonal(), (300, 300)),
        (jaxinit.orthogonal(batch_axis=0), (2, 300, 200)),
        (jaxinit.delta_orthogonal(), (3, 3, 260, 260)),
        (jaxinit.gated_orthogonal(2), (260, 520)),
    ],
    ids=["square", "stacked", "delta", "gated"],
)
def test_several_blocks_per_run_under_x64(init, shape, dtype):
    """Under x64 a run's loop index is int64; the single-device formation once subtracted it
    from an int32 and raised for every matrix with more than one block in a run (M > 128)."""
    assert householder.stages(300, 300) == ((0, 2),)  # one run of three blocks
    with jax.enable_x64(True):
        q = np.asarray(init(KEY, shape, dtype))
    assert q.dtype == np.dtype(dtype)
    if len(shape) == 4:  # delta: the centre tap
        blocks = [q[1, 1]]
    elif len(shape) == 3:  # stacked
        blocks = list(q)
    elif shape[1] > shape[0]:  # gated: one block per gate
        blocks = [q[:, :260], q[:, 260:]]
    else:
        blocks = [q]
    tol = 1e-5 if dtype == jnp.float32 else F64_ORTHONORMAL
    for block in blocks:
        assert _gram_error(block, rows=block.shape[0] < block.shape[1]) <= tol


def test_complex_dtypes_compile_with_the_default_options():
    """XLA:CPU's two kernel emitters round complex arithmetic differently."""
    assert orthogonal.Orthogonal().compile_options(np.dtype(np.complex64)) is None
    assert orthogonal.Orthogonal().compile_options(np.dtype(np.float32)) == orthogonal.CPU_OPTIONS


def test_a_compiler_option_xla_does_not_know_is_dropped(monkeypatch):
    """A jax upgrade may remove an XLA option: the call runs without it, once and for all."""
    monkeypatch.setitem(orthogonal.CPU_OPTIONS, "xla_cpu_no_such_option_in_any_xla", True)
    monkeypatch.setattr(sharding, "_UNKNOWN_OPTIONS", set())
    got = jaxinit.orthogonal()(KEY, (12, 10))
    assert "xla_cpu_no_such_option_in_any_xla" in sharding._UNKNOWN_OPTIONS
    monkeypatch.delitem(orthogonal.CPU_OPTIONS, "xla_cpu_no_such_option_in_any_xla")
    np.testing.assert_array_equal(np.asarray(got), np.asarray(jaxinit.orthogonal()(KEY, (12, 10))))


@pytest.mark.parametrize("n, m, count", [(48, 16, 4), (200, 130, 3), (30, 30, 1)])
def test_stack_draws_matrix_i_from_panels_i_times_p_of_one_stream(n, m, count):
    """Stacked matrices (gate blocks) come from offsets of one key's stream: matrix i is the
    one `tall` forms from panels i*P.., each semi-orthogonal and unlike the others."""
    key = jax.random.key(7)
    q = np.asarray(jax.jit(lambda k: householder.stack(k, n, m, jnp.float32, count))(key))
    p = householder.panels(n, m)
    for i in range(count):
        alone = jax.jit(lambda k, f: householder.tall(k, n, m, jnp.float32, f))(key, i * p)
        np.testing.assert_array_equal(q[i], np.asarray(alone))  # the loop body is `tall`
        assert np.abs(q[i].T.astype(np.float64) @ q[i] - np.eye(m)).max() <= 1e-5
    for i, j in itertools.combinations(range(count), 2):
        # independent Haar columns: |<q_i[:, c], q_j[:, c]>| is about 1/sqrt(n), never ~1
        assert np.abs((q[i] * q[j]).sum(axis=0)).max() < 0.9


@pytest.mark.parametrize("n_rows, n_cols", [(48, 16), (16, 48), (130, 130)])
def test_matrix_block_of_a_stack_member_is_that_member(n_rows, n_cols):
    """A device's block of stacked matrix i (`matrix_block(batch=, index=)`, what a sharded
    gated kernel forms) is the block of `matrix(batch=)[i]` to rounding: the same reflectors,
    applied a panel at a time."""
    key, count = jax.random.key(5), 3
    full = np.asarray(householder.matrix(key, n_rows, n_cols, jnp.float32, batch=count))
    rows, cols = jnp.arange(3, n_rows, 2), jnp.arange(n_cols // 2)
    for i in range(count):
        block = jax.jit(
            lambda k, i: householder.matrix_block(
                k, n_rows, n_cols, rows, cols, jnp.float32, batch=count, index=i
            )
        )(key, i)
        want = full[i][np.asarray(rows)][:, np.asarray(cols)]
        if min(n_rows, n_cols) <= householder.PANEL:  # one panel: the same operations
            np.testing.assert_array_equal(np.asarray(block), want)
        else:  # panels of 64 against blocks of 128: the contract's tier 1' (measured 2.4e-7)
            np.testing.assert_allclose(np.asarray(block), want, rtol=0, atol=TIER_1_PRIME)
