"""Haar-distributed semi-orthogonal matrices as products of random Householder reflections.

The reflectors of the QR factorization of a Gaussian matrix are themselves independent Gaussian
vectors (Stewart 1980), so a Haar matrix needs no QR at all: draw the reflectors, apply them.
That halves the work of QR-then-form-Q, and -- the point for sharding -- every device can
regenerate the reflectors from the key and form only *its own* columns (or rows) of Q, with
blocked matmuls and no communication.

A tall ``N x M`` matrix (``N >= M``) is ``Q = H_1 H_2 ... H_M E_M D`` where ``H_j`` reflects the
coordinates ``j..N-1`` with vector ``u_j`` built from column ``j`` of a Gaussian matrix (entries
``j..N-1``), ``E_M`` is the first ``M`` columns of the identity and ``D`` holds the phases of
R's diagonal (Mezzadri's fix, which makes Q exactly Haar). Reflectors are applied in blocks in
compact WY form ``H_s ... H_{s+b-1} = I - U T U^H`` (Schreiber & Van Loan 1989), ``T`` from
LAPACK's ``larft`` recurrence.

The program's size does not depend on N or M -- an initializer runs once per shape, so its
compile time is what a user pays: the draws are one sampler call, and the blocks are applied
by a few loops (`stages`) whose bodies have static shapes (docs/orthogonal.md). A large matrix
draws only the rows its loops work on (`chunks`), about half of a square one, column by
column, so the loops multiply by ``U^T`` without transposing it. Wide matrices are
transposes.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxinit._src.core import samplers, streams
from jaxinit._src.core.typing import Array, KeyArray

#: Reflectors per panel: panel ``k`` holds the Gaussian vectors of reflectors ``k*PANEL ..``.
#: Fixed, never tied to the sharding, so the values are the same on every mesh.
PANEL = 64
#: Reflectors per block: each block's ``T`` comes from one ``larft`` loop of BLOCK steps.
BLOCK = 128
#: From this many columns on, `tall` applies two blocks per step (`step_width`, `group_t`).
#: Measured on a 2-core CPU against one block per step: 13% faster at 4096^2, even at 2048^2
#: and 4096 x 1024, 7% slower at 3072 x 768 (docs/orthogonal.md).
GROUP_FROM = 2048
#: Most loops (`stages`) `tall` uses: each is one compiled loop body, whatever N and M.
MAX_STAGES = 16
#: The cost model that picks the stages: matmul speed (float32, 2-core CPU, measured) and the
#: time to compile one more loop body. A model, not a tuning knob: it only trades run time
#: against compile time, and the values never depend on it beyond rounding.
FLOPS = 3e10
RUN_SECONDS = 0.06
_HIGHEST = lax.Precision.HIGHEST


# Written with `lax` primitives: ``jnp`` functions are jitted functions of their own, and each
# costs a trace of its own on the first call -- the call this module is built to make cheap.
def _dot(a: Array, b: Array, contract: tuple[int, int], batch: int = 0) -> Array:
    """``a`` times ``b`` contracting axis ``contract[0]`` of a with ``contract[1]`` of b, over
    `batch` leading batch axes. Pinned precision: TF32 on NVIDIA GPUs or bf16 passes on TPU
    would break orthogonality."""
    dims = (((contract[0],), (contract[1],)), (tuple(range(batch)), tuple(range(batch))))
    return lax.dot_general(a, b, dims, precision=_HIGHEST)


def _mm(a: Array, b: Array) -> Array:
    """``a @ b`` of two matrices."""
    return _dot(a, b, (1, 0))


def _conj(a: Array) -> Array:
    return lax.conj(a) if np.issubdtype(a.dtype, np.complexfloating) else a


def _abs2(a: Array) -> Array:
    """``|a|^2``, real."""
    return (
        lax.real(lax.mul(a, lax.conj(a)))
        if np.issubdtype(a.dtype, np.complexfloating)
        else lax.mul(a, a)
    )


def _full(shape: tuple[int, ...], value: Any, dtype: Any) -> Array:
    return lax.full(shape, np.array(value, dtype), dtype)


def _where(pred: Array, a: Array, b: Array) -> Array:
    """``jnp.where`` for operands of one dtype, broadcast to `pred`'s shape."""
    shape = pred.shape
    return lax.select(pred, _to(a, shape), _to(b, shape))


def _to(x: Array, shape: tuple[int, ...]) -> Array:
    if x.shape == shape:
        return x
    return lax.broadcast_in_dim(x, shape, tuple(range(len(shape) - x.ndim, len(shape))))


def _sum(x: Array, axis: int) -> Array:
    return lax.reduce(x, np.array(0, x.dtype), lax.add, (axis % x.ndim,))


def _eye(like: Array, n: int, m: int, diagonal: Array | None = None) -> Array:
    """The ``n x m`` identity in `like`'s dtype -- with `diagonal` (``m`` values), that
    diagonal -- varying as `like` does under ``shard_map`` (a loop carry keeps one type)."""
    shape = (n, m)
    eq = lax.eq(lax.broadcasted_iota(np.int32, shape, 0), lax.broadcasted_iota(np.int32, shape, 1))
    one = lax.full_like(like, 1, shape=shape)
    if diagonal is not None:
        one = lax.mul(one, lax.broadcast_in_dim(diagonal, shape, (1,)))
    return lax.select(eq, one, lax.full_like(like, 0, shape=shape))


# -- draws ----------------------------------------------------------------------------------------
def _lanes(key: KeyArray, n: int, panels: int, dtype: Any) -> bool:
    """Whether the panels are one stream, ``normal(key, (panels * n * PANEL,))``, from which any
    panel can be redrawn alone (`streams.normal_at`): float32 with partitionable threefry."""
    return streams.has_lanes(key, (panels * n * PANEL,), dtype)


def draws(key: KeyArray, first: Any, panels: int, n: int, m: int, dtype: Any) -> Array:
    """Panels ``first .. first + panels - 1`` (`first` may be traced) of the Gaussian
    ``(ceil(m / PANEL), n, PANEL)`` whose ``[k, :, c]`` is the vector of reflector
    ``k*PANEL + c`` (used from row ``k*PANEL + c`` down). Any panel can be drawn alone.

    float32 under partitionable threefry: one stream, element ``(k, r, c)`` at counter
    ``(k*n + r)*PANEL + c`` of ``normal(key, (total,))``. Otherwise (float64, complex, other
    key kinds) panel ``k`` is ``normal(fold_in(key, k), (n, PANEL))``.
    """
    if _lanes(key, n, -(-m // PANEL), dtype):
        start = lax.mul(lax.convert_element_type(first, np.uint32), np.uint32(n * PANEL))
        flat = streams.normal_at(key, start, panels * n * PANEL, dtype)
        return flat.reshape(panels, n, PANEL)
    ks = lax.add(lax.convert_element_type(first, np.int32), lax.iota(np.int32, panels))
    one = lambda k: samplers.normal(jax.random.fold_in(key, k), (n, PANEL), dtype, None)
    return jax.vmap(one)(ks)


# -- blocks of reflectors -------------------------------------------------------------------------
def reflectors(g: Array, first: Any, m: int) -> tuple[Array, Array, Array, Array]:
    """``(U, tau, U^H U, d)`` of blocks ``first, first + 1, ...`` (`first` may be traced) from
    their draws `g` (``blocks x rows x b``, rows counted from the top).

    Column ``c`` of block ``k`` is reflector ``j = k*b + c``: ``I - tau_j u_j u_j^H`` with
    ``u_j`` zero above row ``j``; reflectors past the matrix (``j >= m``) are the identity
    (``u = 0, tau = 0``). ``d`` is Haar's phase fix of each column.

    ``u = x + phase |x| e_j`` maps ``x`` to ``-phase |x| e_j`` without cancellation (``phase =
    x_jj / |x_jj|``), so ``R_jj = -phase |x|`` and the phase fix multiplies column j by
    ``-phase``. ``tau = 2 / |u|^2`` with ``|u|^2 = 2 |x| (|x| + |x_jj|)``: fewer roundings
    than summing ``|u|^2``, which keeps small matrices within a few ulps of orthogonal.
    """
    dtype = g.dtype
    shape = g.shape
    b = shape[2]
    r = lax.broadcasted_iota(np.int32, shape, 1)
    j = lax.add(lax.broadcasted_iota(np.int32, shape, 0), lax.convert_element_type(first, np.int32))
    j = lax.add(lax.mul(j, np.int32(b)), lax.broadcasted_iota(np.int32, shape, 2))
    zero = _full(shape, 0, dtype)
    diag = lax.eq(r, j)
    x = lax.select(lax.bitwise_and(lax.ge(r, j), lax.lt(j, np.int32(m))), g, zero)
    alpha = _sum(lax.select(diag, x, zero), 1)
    phase, pivot, tau = _pivots(alpha, _sum(_abs2(x), 1))
    u = lax.add(x, lax.select(diag, lax.broadcast_in_dim(pivot, shape, (0, 2)), zero))
    gram = _dot(_conj(u), u, (1, 1), batch=1)
    return u, tau, gram, lax.neg(phase)


def _pivots(alpha: Array, sq: Array) -> tuple[Array, Array, Array]:
    """``(phase, pivot, tau)`` of reflectors ``u = x + pivot e_j`` from each column's ``x_jj``
    (`alpha`) and ``|x|^2`` (`sq`, real), as `reflectors` defines them."""
    dtype = alpha.dtype
    real = sq.dtype
    sigma = lax.sqrt(sq)
    mag = lax.abs(alpha)
    nonzero = lax.ne(mag, np.array(0, real))
    safe = lax.convert_element_type(_where(nonzero, mag, _full(mag.shape, 1, real)), dtype)
    phase = _where(nonzero, lax.div(alpha, safe), _full(alpha.shape, 1, dtype))
    pivot = lax.mul(phase, lax.convert_element_type(sigma, dtype))
    norm2 = lax.mul(lax.add(sigma, sigma), lax.add(sigma, mag))
    positive = lax.gt(norm2, np.array(0, real))
    inv = lax.div(_full(norm2.shape, 2, real), _where(positive, norm2, _full(norm2.shape, 1, real)))
    tau = lax.convert_element_type(_where(positive, inv, _full(norm2.shape, 0, real)), dtype)
    return phase, pivot, tau


def t_factor(gram: Array, tau: Array) -> Array:
    """``T`` with ``(I - tau_1 u_1 u_1^H) ... (I - tau_b u_b u_b^H) = I - U T U^H``, from
    ``gram = U^H U`` (``... x b x b``, any leading batch axes) and `tau`.

    LAPACK's ``larft`` recurrence, ``T[:j, j] = -tau_j T[:j, :j] gram[:j, j]``, ``T[j, j] =
    tau_j``: one loop of `b` steps of elementwise work, for every block at once.
    """
    b = tau.shape[-1]
    idx = lax.iota(np.int32, b)
    zero = _full(tau.shape, 0, tau.dtype)

    def column(j, t):
        j = lax.convert_element_type(j, np.int32)  # int64 under x64
        g = lax.reshape(_last(gram, j), tau.shape)
        tj = _to(_last(tau, j), tau.shape)
        v = lax.select(_to(lax.lt(idx, j), tau.shape), g, zero)
        tv = _dot(t, v, (t.ndim - 1, v.ndim - 1), batch=t.ndim - 2)
        col = lax.select(_to(lax.eq(idx, j), tau.shape), tj, lax.mul(lax.neg(tj), tv))
        at = (np.int32(0),) * (t.ndim - 1) + (j,)
        return lax.dynamic_update_slice(t, lax.reshape(col, (*tau.shape, 1)), at)

    return lax.fori_loop(0, b, column, lax.full_like(gram, 0))  # varies as gram (shard_map)


def _last(a: Array, j: Array) -> Array:
    """``a[..., j:j+1]`` (`j` traced)."""
    at = (np.int32(0),) * (a.ndim - 1) + (j,)
    return lax.dynamic_slice(a, at, (*a.shape[:-1], 1))


def _apply_left(u: Array, t: Array, y: Array) -> Array:
    """``(I - U T U^H) y``."""
    return _apply_left_t(lax.transpose(u, (1, 0)), t, y)


def _apply_left_t(ut: Array, t: Array, y: Array, uh_y: Array | None = None) -> Array:
    """``(I - U T U^H) y`` from ``U``'s transpose: ``U^H y`` is then a plain matmul, which
    XLA:CPU hands to its faster library kernel (YNNPACK) -- 10-25% faster than the transposed
    product. Given ``U`` transposed by a `lax.transpose`, XLA folds the transpose into both
    products: the same program as from ``U``, bit for bit. `uh_y`: ``U^H y``, where the caller
    forms it more cheaply from what it knows of ``y``."""
    uh_y = _mm(_conj(ut), y) if uh_y is None else uh_y
    return lax.sub(y, _dot(ut, _mm(t, uh_y), (0, 0)))


# -- the whole matrix on one device ----------------------------------------------------------------
def width(m: int) -> int:
    """Reflectors per block for ``m`` columns: `BLOCK`, or the power of two >= m when smaller."""
    return BLOCK if m >= BLOCK else 1 << max(0, (m - 1).bit_length())


def step_width(m: int) -> int:
    """Reflectors `tall` applies per step: two blocks from `GROUP_FROM` columns on, else one.

    Two blocks per step halve the passes over the trailing submatrix (one ``U^H y``, one
    subtraction of ``U W`` per ``2b`` reflectors) and make ``U W`` twice as deep, while each
    block's ``T`` still comes from a ``larft`` loop of ``b`` steps (`group_t`). The price is a
    Gram matrix ``U^H U`` twice as wide, ``b / m`` more work: worth it on wide matrices only."""
    b = width(m)
    return 2 * b if m >= GROUP_FROM else b


def group_t(gram: Array, tau: Array, b: int) -> Array:
    """``T`` of each group of two blocks of `b` reflectors (``I - U T U^H`` for all ``2b``),
    from the group's ``gram = U^H U`` (``groups x 2b x 2b``) and `tau`: each block's own ``T``
    from the ``larft`` loop (`t_factor`, `b` steps), then

        ``(I - U1 T1 U1^H)(I - U2 T2 U2^H) = I - [U1 U2] [[T1, -T1 U1^H U2 T2], [0, T2]] [U1 U2]^H``
    """
    groups = gram.shape[0]

    def part(r: int, c: int) -> Array:  # block (r, c) of each group's 2 x 2 blocks
        return lax.slice(gram, (0, r * b, c * b), (groups, (r + 1) * b, (c + 1) * b))

    own = lax.reshape(lax.concatenate([part(0, 0), part(1, 1)], 1), (2 * groups, b, b))
    t = lax.reshape(t_factor(own, lax.reshape(tau, (2 * groups, b))), (groups, 2 * b, b))
    t1, t2 = lax.slice_in_dim(t, 0, b, axis=1), lax.slice_in_dim(t, b, 2 * b, axis=1)
    corner = lax.neg(_dot(_dot(t1, part(0, 1), (2, 1), batch=1), t2, (2, 1), batch=1))
    return lax.concatenate(
        [lax.concatenate([t1, corner], 2), lax.concatenate([lax.full_like(t1, 0), t2], 2)], 1
    )


@functools.lru_cache(maxsize=256)
def stages(n: int, m: int) -> tuple[tuple[int, int], ...]:
    """The steps of an ``n x m`` matrix (`step_width` reflectors each) cut into runs
    ``(first, last)``, at most `MAX_STAGES`.

    A run is one loop whose body works on the trailing ``(n - s) x (m - s)`` submatrix at its
    first step's start ``s``: later steps of the run do some needless work on rows and columns
    that are still identity, and every run is one more loop body to compile. The cuts minimize
    ``flops / FLOPS + runs * RUN_SECONDS`` (dynamic programming), so a small matrix is one run
    and a large one `MAX_STAGES`.
    """
    b = step_width(m)
    count = -(-m // b)
    cost = [4.0 * b * (n - k * b) * (m - k * b) / FLOPS for k in range(count)]  # seconds
    runs = min(MAX_STAGES, count)
    inf = float("inf")
    # best[j][k]: least seconds for blocks k.. in j runs; cut[j][k]: where the first run ends.
    best = [[inf] * (count + 1) for _ in range(runs + 1)]
    cut = [[0] * (count + 1) for _ in range(runs + 1)]
    best[0][count] = 0.0
    for j in range(1, runs + 1):
        for k in range(count):
            for end in range(k + 1, count + 1):
                total = cost[k] * (end - k) + RUN_SECONDS + best[j - 1][end]
                if total < best[j][k]:
                    best[j][k], cut[j][k] = total, end
    j = min(range(1, runs + 1), key=lambda j: best[j][0])
    out, k = [], 0
    while k < count:
        out.append((k, cut[j][k] - 1))
        k, j = cut[j][k], j - 1
    return tuple(out)


#: At most this many chunks of draws per step (`chunks`): their Gram matrices are held at once.
MAX_CHUNKS = 8
#: From this modeled run time on (seconds), `tall` draws in `chunks` (`chunked`).
CHUNKED_SECONDS = 1.0


@functools.lru_cache(maxsize=256)
def chunks(n: int, m: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """How `tall` lays out its draws when `chunked`: ``(c, step, row0, first)``. Step ``k``'s
    draws -- rows ``s0 ..`` of its `step_width` reflectors, ``s0`` where its run (`stages`)
    starts, the rows a run's loop body works on -- are cut into chunks of ``c`` rows (a
    multiple of w), chunk ``t`` holding rows ``row0[t] ..`` of step ``step[t]``; ``first[k]``
    is step ``k``'s first chunk. On a square matrix that is about half the draws of
    full-height steps, in one array of one shape, from which each step's rows are one slice.
    """
    w = step_width(m)
    count = -(-m // w)
    blocks = -(-n // w)  # w-row blocks of the whole height
    c = w * -(-blocks // MAX_CHUNKS)  # n <= MAX_CHUNKS * c
    start = np.zeros(count, np.int64)
    for k0, k1 in stages(n, m):
        start[k0 : k1 + 1] = k0 * w
    per = [-(-(n - int(start[k])) // c) for k in range(count)]
    step = np.repeat(np.arange(count, dtype=np.int32), per)
    first = np.concatenate([[0], np.cumsum(per)[:-1]]).astype(np.int32)
    row0 = (start[step] + (np.arange(len(step)) - first[step]) * c).astype(np.int32)
    return c, step, row0, first


def _chunk_draws(key: KeyArray, first: Any, n: int, m: int, dtype: Any) -> Array:
    """The draws of `tall` laid out as `chunks`, column by column: ``chunks x w x c``
    (``[t, a, r]``: column ``a`` of the step, row ``row0[t] + r``), zero above each
    reflector's row ``j``, past row ``n`` and past column ``m``."""
    w = step_width(m)
    c, step, row0, _ = chunks(n, m)
    shape = (len(step), w, c)
    k = lax.broadcast_in_dim(np.asarray(step), shape, (0,))
    row = lax.add(lax.broadcast_in_dim(np.asarray(row0), shape, (0,)),
                  lax.broadcasted_iota(np.int32, shape, 2))  # fmt: skip
    col = lax.broadcasted_iota(np.int32, shape, 1)
    j = lax.add(lax.mul(k, np.int32(w)), col)
    live = lax.bitwise_and(
        lax.bitwise_and(lax.ge(row, j), lax.lt(j, np.int32(m))), lax.lt(row, np.int32(n))
    )
    per = w // PANEL
    if _lanes(key, n, -(-m // PANEL), dtype):
        # element (panel, row, c % PANEL) of the stream: `draws`' counters
        base = lax.convert_element_type(first, np.uint32)
        u32 = lambda a: lax.convert_element_type(a, np.uint32)
        panel = lax.add(
            base, u32(lax.add(lax.mul(k, np.int32(per)), lax.div(col, np.int32(PANEL))))
        )
        at = lax.add(
            lax.mul(lax.add(lax.mul(panel, np.uint32(n)), u32(row)), np.uint32(PANEL)),
            u32(lax.rem(col, np.int32(PANEL))),
        )
        x = streams.normal_from_bits(streams.bits_of(jax.random.key_data(key), at), dtype)
    else:  # every panel drawn whole, then cut into chunks
        drawn = panels(n, m)
        steps = -(-m // w)
        g = draws(key, first, drawn, n, m, dtype)
        g = lax.pad(g, np.array(0, g.dtype), ((0, steps * per - drawn, 0), (0, c, 0), (0, 0, 0)))
        g = lax.reshape(lax.transpose(lax.reshape(g, (steps, per, n + c, PANEL)), (0, 2, 1, 3)),
                        (steps, n + c, w))  # fmt: skip
        x = jax.vmap(lambda s, r: lax.dynamic_slice(g, (s, r, np.int32(0)), (1, c, w))[0])(
            np.asarray(step), np.asarray(row0)
        )
        x = lax.transpose(x, (0, 2, 1))
    return lax.select(live, x, lax.full_like(x, 0))


def _from_gram(gram_x: Array, sq: Array, top: Array) -> tuple[Array, Array, Array, Array]:
    """``(pivots, tau, U^H U, d)`` of steps whose reflectors are ``u = x + pivot e_j``, from
    ``X^H X``, the columns' squared norms `sq` (summed by a reduction: the matmul's diagonal
    is a few ulps less accurate, and ``tau`` needs them exact to keep ``H`` orthogonal) and
    `top` -- each step's ``w x w`` block of ``X`` at its own rows ``j``, column by column
    (``top[k, a, r] = x_a[k w + r]``; its diagonal is ``x_jj``) -- without another pass over
    ``X`` (`reflectors`' formulas).

    ``u_a^H u_b = x_a^H x_b + conj(x_a[j_b]) pivot_b`` for ``a < b`` (``x_b[j_a] = 0``): only
    the strictly upper part of the returned ``U^H U`` is that of ``U`` -- the part ``T`` uses.
    """
    shape = gram_x.shape
    eye = lax.eq(lax.broadcasted_iota(np.int32, shape, 1), lax.broadcasted_iota(np.int32, shape, 2))
    alpha = _sum(lax.select(eye, top, _full(shape, 0, gram_x.dtype)), 1)
    phase, pivot, tau = _pivots(alpha, sq)
    # conj(x_a[j_b]) * pivot_b = conj(top[a, b]) * pivot_b at [a, b]
    corner = lax.mul(_conj(top), lax.broadcast_in_dim(pivot, shape, (0, 2)))
    return pivot, tau, lax.add(gram_x, corner), lax.neg(phase)


def chunked(n: int, m: int) -> bool:
    """Whether `tall` lays its draws out in `chunks` (the rows each step's loop body works on)
    rather than as full-height steps: when the matrix's modeled run time (the `stages` model,
    every step on its own trailing submatrix) is at least `CHUNKED_SECONDS`.

    On a square matrix the chunks hold about half the draws, which makes large matrices
    10-13% faster (3072^2, 4096^2), for 0.01-0.04 s more compilation; below, the front is too
    small a part of the run to gain, and the first call costs up to 0.08 s more (256^2 to
    2048^2; measured, 2-core CPU). The values differ from full-height steps by rounding only.
    """
    w = step_width(m)
    if w < PANEL:
        return False
    flops = sum(4.0 * w * (n - k * w) * (m - k * w) for k in range(-(-m // w)))
    return flops / FLOPS >= CHUNKED_SECONDS


def _full_height(
    key: KeyArray, first: Any, n: int, m: int, dtype: Any
) -> tuple[Any, Array, Array, Array]:
    """`tall`'s steps as full-height draws: ``(u_of, tau, U^H U, d)``, ``u_of(k, s0)`` step
    ``k``'s ``U`` from row ``s0`` down, transposed (`k` traced), the rest as `reflectors`
    gives them."""
    w = step_width(m)
    steps = -(-m // w)
    drawn = panels(n, m)
    g = draws(key, first, drawn, n, m, dtype)
    if w < PANEL:  # one block of fewer than PANEL reflectors
        g = lax.slice(g, (0, 0, 0), (1, n, w))
    else:  # (steps, n, w): a step's draws, panels side by side (past m: zeros, the identity)
        per = w // PANEL
        g = lax.pad(g, np.array(0, g.dtype), ((0, steps * per - drawn, 0), (0, 0, 0), (0, 0, 0)))
        g = lax.reshape(lax.transpose(lax.reshape(g, (steps, per, n, PANEL)), (0, 2, 1, 3)),
                        (steps, n, w))  # fmt: skip
    u, tau, gram, d = reflectors(g, 0, m)

    def u_of(k: Array, s0: int) -> Array:  # U^T: XLA folds the transpose into the matmuls
        zero = np.int32(0)
        part = lax.dynamic_slice(u, (k, np.int32(s0), zero), (1, n - s0, w))
        return lax.transpose(lax.reshape(part, (n - s0, w)), (1, 0))

    return u_of, tau, gram, d


def _chunked(
    key: KeyArray, first: Any, n: int, m: int, dtype: Any
) -> tuple[Any, Array, Array, Array]:
    """`_full_height`'s results from draws laid out in `chunks`, column by column
    (`_chunk_draws`): each step's ``U^H U``, ``tau`` and phases from matmuls and sums over its
    chunks (`_from_gram`), then ``U`` is ``X`` plus the pivots, in one pass. ``u_of`` gives
    ``U`` transposed, in rows of `c` contiguous values: a step's rows are its chunks side by
    side (a copy of whole rows of chunks, not a transpose), and ``U^H y`` a plain matmul."""
    w = step_width(m)
    c, step_of, row0, first_chunk = chunks(n, m)
    x = _chunk_draws(key, first, n, m, dtype)
    count, size = len(first_chunk), len(step_of)
    real = np.finfo(x.dtype).dtype
    # Per step: X^H X and the squared column norms summed over its chunks (matmuls with a
    # 0/1 matrix: exact sums of a few terms), and its diagonal block (rows j).
    owner = step_of[None, :] == np.arange(count)[:, None]
    gram_c = lax.reshape(_dot(_conj(x), x, (2, 2), batch=1), (size, w * w))
    gram_x = lax.reshape(_mm(owner.astype(x.dtype), gram_c), (count, w, w))
    sq = _mm(owner.astype(real), _sum(_abs2(x), 2))
    # step k's rows j start at flat row first_chunk[k] * c + k * w - row0[first_chunk[k]]
    at = first_chunk * c + np.arange(count) * w - row0[first_chunk]
    cut = lax.reshape(x, (size, w, c // w, w))
    top = jax.vmap(
        lambda t, i: lax.reshape(
            lax.dynamic_slice(cut, (t, np.int32(0), i, np.int32(0)), (1, w, 1, w)), (w, w)
        )
    )((at // c).astype(np.int32), (at % c // w).astype(np.int32))
    pivot, tau, gram, d = _from_gram(gram_x, sq, top)
    # u = x + pivot at row j = k*w + col of each column
    shape = x.shape
    row = lax.add(lax.broadcast_in_dim(row0, shape, (0,)), lax.broadcasted_iota(np.int32, shape, 2))
    j = lax.add(
        lax.broadcast_in_dim(step_of * w, shape, (0,)), lax.broadcasted_iota(np.int32, shape, 1)
    )
    at_chunk = lax.broadcast_in_dim(_mm(owner.T.astype(x.dtype), pivot), shape, (0, 1))
    u = lax.add(x, lax.select(lax.eq(row, j), at_chunk, lax.full_like(x, 0)))

    def u_of(k: Array, s0: int) -> Array:
        per = -(-(n - s0) // c)  # the chunks of every step of the run starting at s0
        t = lax.reshape(lax.dynamic_slice(first_chunk, (k,), (1,)), ())
        part = lax.dynamic_slice(u, (t, np.int32(0), np.int32(0)), (per, w, c))
        rows = lax.reshape(lax.transpose(part, (1, 0, 2)), (w, per * c))
        return lax.slice(rows, (0, 0), (w, n - s0))

    return u_of, tau, gram, d


def tall(key: KeyArray, n: int, m: int, dtype: Any, first: Any = 0) -> Array:
    """The whole ``n x m`` (``n >= m``) Haar matrix, from panels ``first, first + 1, ...`` of
    the draws (`first` may be traced: `stack` forms several matrices from one key).

    Every step's reflectors (`step_width` each) and ``T`` are built at once: elementwise
    work, batched matmuls and one loop of ``b`` steps (`t_factor`, `group_t`), from draws
    laid out as full-height steps or, for large matrices, in `chunks` of the rows each step
    can change (`chunked`). Then the steps are applied from the last to the first, each to
    the trailing submatrix it can change, by at most `MAX_STAGES` loops (`stages`). Every
    loop body has static shapes, so the program is the same size for every ``n`` and ``m``.
    Each run starts from the identity with the previous run's result in its corner: nothing
    is copied out of a larger matrix and back.
    """
    b, w = width(m), step_width(m)
    front = _chunked if chunked(n, m) else _full_height
    u_of, tau, gram, d = front(key, first, n, m, dtype)
    t_all = t_factor(gram, tau) if w == b else group_t(gram, tau, b)
    # Q = H_1 ... H_M (E_M D): the phases D scale the columns of the identity the blocks are
    # applied to -- no pass over the finished matrix. (For real dtypes they are +-1, so the
    # bits are those of scaling Q itself: the blocks act on each column alone.)
    phases = lax.slice(lax.reshape(d, (d.shape[0] * w,)), (0,), (m,))

    def t_of(k: Any) -> Array:  # step k's T (int32 indices, also under x64)
        zero = np.int32(0)
        return lax.reshape(lax.dynamic_slice(t_all, (k, zero, zero), (1, w, w)), (w, w))

    y: Array | None = None
    for first_step, last in reversed(stages(n, m)):
        s0 = first_step * w
        rows = n - s0

        def step(k, sub, s0=s0):
            return _apply_left_t(u_of(k, s0), t_of(k), sub)

        sub = _eye(tau, rows, m - s0, lax.slice(phases, (s0,), (m,)))
        if y is not None:  # the later steps' result, in the corner they left unchanged
            corner = (rows - y.shape[0], m - s0 - y.shape[1])
            sub = lax.dynamic_update_slice(sub, y, corner)
        if first_step == last and y is not None:
            # one step on [[D, 0], [0, y]] (D: its w phases): U^H of that is [U1^H D, U2^H y],
            # U split after its first w rows -- no product over the identity and zero blocks
            k = np.int32(first_step)
            ut = u_of(k, s0)
            u1, u2 = lax.slice_in_dim(ut, 0, w, axis=1), lax.slice_in_dim(ut, w, rows, axis=1)
            head = lax.mul(
                _conj(u1), lax.broadcast_in_dim(lax.slice(phases, (s0,), (s0 + w,)), (w, w), (1,))
            )
            sub = _apply_left_t(ut, t_of(k), sub, lax.concatenate([head, _mm(_conj(u2), y)], 1))
        elif first_step == last:
            sub = step(np.int32(first_step), sub)
        else:  # from the run's last step to its first
            sub = lax.fori_loop(
                0,
                last - first_step + 1,
                # the index is int64 under x64: the step's arithmetic stays int32
                lambda i, y, f=step, e=last: f(
                    lax.sub(np.int32(e), lax.convert_element_type(i, np.int32)), y
                ),
                sub,
            )
        y = sub
    assert y is not None
    return y


def panels(n: int, m: int) -> int:
    """How many panels of draws one ``n x m`` (``n >= m``) matrix takes in `tall`."""
    b = width(m)
    return -(-m // b) * max(1, b // PANEL)


def _member(key: KeyArray, n: int, m: int, count: int, i: Any) -> tuple[KeyArray, Any]:
    """The key and first panel of matrix `i` (may be traced) of `stack`'s `count`: panels
    ``i * P ..`` of the key's one draw, or, past 2^32 counters, key ``fold_in(key, i)``."""
    p = panels(n, m)
    if count * p * n * PANEL >= 2**32:  # past one stream's 32-bit counters: a key per matrix
        return jax.random.fold_in(key, i), 0
    return key, lax.mul(lax.convert_element_type(i, np.int32), np.int32(p))


def stack(key: KeyArray, n: int, m: int, dtype: Any, count: int) -> Array:
    """`count` independent ``n x m`` (``n >= m``) Haar matrices from one key: matrix ``i`` is
    `tall` of panels ``i * P ..`` of one draw (``P = panels(n, m)``; past 2^32 counters, of
    key ``fold_in(key, i)``), formed one at a time
    (`lax.map`), so temporaries stay one matrix's worth -- also when an enclosing jit shards
    the result -- and no second key (a split) is needed."""

    def one(i: Array) -> Array:
        key_i, first = _member(key, n, m, count, i)
        return tall(key_i, n, m, dtype, first)

    return lax.map(one, lax.iota(np.int32, count))


# -- columns or rows of the matrix, in a shard's memory -------------------------------------------
def _panel_block(
    key: KeyArray, first: Any, k: Array, n: int, m: int, dtype: Any
) -> tuple[Array, ...]:
    """``(U, T, d)`` of panel `k` (traced) of the matrix whose draws start at panel `first`,
    full height: reflectors past `m` are the identity."""
    k = lax.convert_element_type(k, np.int32)  # int64 under x64
    at = lax.add(lax.convert_element_type(first, np.int32), k)
    u, tau, gram, d = reflectors(draws(key, at, 1, n, m, dtype), k, m)
    return u[0], t_factor(gram, tau)[0], d[0]


def tall_columns(key: KeyArray, n: int, m: int, cols: Array, dtype: Any, first: Any = 0) -> Array:
    """Columns `cols` (int vector) of the ``n x m`` Haar matrix, in ``n x len(cols)`` memory:
    a loop over panels that redraws each panel's reflectors from the key."""
    npanels = -(-m // PANEL)

    def step(i, carry):
        y, d = carry
        k = npanels - 1 - i
        u, t, ph = _panel_block(key, first, k, n, m, dtype)
        d = jax.lax.dynamic_update_slice(d, ph, (k * PANEL,))
        return _apply_left(u, t, y), d

    y0 = (jnp.arange(n, dtype=cols.dtype)[:, None] == cols[None, :]).astype(dtype)
    d0 = lax.full_like(y0, 0, shape=(npanels * PANEL,))  # varies as y0 (shard_map)
    y, d = jax.lax.fori_loop(0, npanels, step, (y0, d0))
    return y * d[cols][None, :]


def tall_rows(key: KeyArray, n: int, m: int, rows: Array, dtype: Any, first: Any = 0) -> Array:
    """Rows `rows` (int vector) of the ``n x m`` Haar matrix, in ``len(rows) x n`` memory:
    ``E_R^T B_1 B_2 ... B_K`` applied from the right, redrawing each panel from the key."""
    npanels = -(-m // PANEL)

    def step(k, carry):
        x, d = carry
        u, t, ph = _panel_block(key, first, k, n, m, dtype)
        d = jax.lax.dynamic_update_slice(d, ph, (k * PANEL,))
        return x - _dot(_mm(_mm(x, u), t), _conj(u), (1, 1)), d

    x0 = (rows[:, None] == jnp.arange(n, dtype=rows.dtype)[None, :]).astype(dtype)
    d0 = lax.full_like(x0, 0, shape=(npanels * PANEL,))  # varies as x0 (shard_map)
    x, d = jax.lax.fori_loop(0, npanels, step, (x0, d0))
    return x[:, :m] * d[:m][None, :]


def matrix(key: KeyArray, n_rows: int, n_cols: int, dtype: Any, batch: int | None = None) -> Array:
    """A Haar ``n_rows x n_cols`` matrix: orthonormal columns if tall, rows if wide; with
    `batch`, ``batch x n_rows x n_cols``: that many independent ones from the one key (`stack`).

    Under ``jax.vmap`` over keys the results are formed one key at a time (`lax.map`): a
    batched program reduces in another order, and each must have the bits of its own call."""
    return _per_key(n_rows, n_cols, np.dtype(dtype), batch)(key)


@functools.lru_cache(maxsize=256)
def _per_key(n_rows: int, n_cols: int, dtype: np.dtype, batch: int | None) -> Any:
    def one(key: KeyArray) -> Array:
        n, m = max(n_rows, n_cols), min(n_rows, n_cols)
        q = tall(key, n, m, dtype) if batch is None else stack(key, n, m, dtype, batch)
        if n_rows >= n_cols:
            return q
        return lax.transpose(q, (1, 0) if batch is None else (0, 2, 1))

    @jax.custom_batching.custom_vmap
    def form(key: KeyArray) -> Array:
        return one(key)

    @form.def_vmap
    def _looped(axis_size: int, in_batched: list[bool], key: KeyArray) -> tuple[Array, bool]:
        del axis_size
        if not in_batched[0]:
            return form(key), False
        return lax.map(form, key), True

    return form


def matrix_block(
    key: KeyArray,
    n_rows: int,
    n_cols: int,
    rows: Array,
    cols: Array,
    dtype: Any,
    batch: int | None = None,
    index: Any = 0,
) -> Array:
    """The ``rows x cols`` block of `matrix` (same values to rounding) -- with `batch`, of its
    matrix `index` (may be traced) -- in memory ~ the smaller of ``N x len(cols)`` and
    ``len(rows) x N`` of the tall view (N = its long side)."""
    transposed = n_rows < n_cols
    n, m = (n_cols, n_rows) if transposed else (n_rows, n_cols)
    r, c = (cols, rows) if transposed else (rows, cols)
    first: Any = 0
    if batch is not None:
        key, first = _member(key, n, m, batch, index)
    if n * c.shape[0] <= r.shape[0] * n:
        block = jnp.take(tall_columns(key, n, m, c, dtype, first), r, axis=0)
    else:
        block = jnp.take(tall_rows(key, n, m, r, dtype, first), c, axis=1)
    return block.T if transposed else block
