"""Haar-distributed semi-orthogonal matrices as products of random Householder reflections.

The reflectors of the QR factorization of a Gaussian matrix are themselves independent Gaussian
vectors (Stewart 1980), so a Haar matrix needs no QR at all: draw the reflectors, apply them.
That halves the work of QR-then-form-Q, and -- the point for sharding -- every device can
regenerate the reflectors from the key and form only *its own* columns (or rows) of Q, with
blocked matmuls and no communication.

A tall ``N x M`` matrix (``N >= M``) is ``Q = H_1 H_2 ... H_M E_M D`` where ``H_j`` reflects the
coordinates ``j..N-1`` with vector ``u_j`` built from column ``j`` of a Gaussian matrix (entries
``j..N-1``), ``E_M`` is the first ``M`` columns of the identity and ``D`` holds the phases of
R's diagonal (Mezzadri's fix, which makes Q exactly Haar). Reflectors are applied in blocks of
`BLOCK` in compact WY form ``H_s ... H_{s+b-1} = I - U T U^H`` with
``T^{-1} = striu(U^H U) + diag(U^H U) / 2`` (Puglisi 1992). Wide matrices are transposes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxinit._src.core import samplers
from jaxinit._src.core.typing import Array, KeyArray

#: Reflectors per panel: each panel's vectors come from one key, ``fold_in(key, panel)``. Fixed,
#: never tied to the sharding, so the values are the same on every mesh.
PANEL = 64
#: Reflectors applied at once on one device (whole panels): larger blocks, faster matmuls.
BLOCK = 128
_HIGHEST = jax.lax.Precision.HIGHEST


def _mm(a: Array, b: Array) -> Array:
    # Pinned precision: TF32 on NVIDIA GPUs or bf16 passes on TPU would break orthogonality.
    return jnp.matmul(a, b, precision=_HIGHEST)


def _adj(a: Array) -> Array:
    return jnp.conj(a).T if jnp.iscomplexobj(a) else a.T


def blocks(m: int) -> list[tuple[int, int, int]]:
    """``(index, start, size)`` of each block of reflectors for `m` columns."""
    return [(k, s, min(BLOCK, m - s)) for k, s in enumerate(range(0, m, BLOCK))]


def _draw(key: KeyArray, k: Any, n: int, dtype: Any) -> Array:
    """The Gaussian ``(n, PANEL)`` of panel `k`: column c holds reflector ``k*PANEL + c`` in rows
    ``k*PANEL + c ..``; one key per panel, so any device can redraw any panel alone. The
    panel's own layout is its shape (no output layout applies to it): drawn at (n, PANEL), XLA
    keeps it local when a caller's jit shards the result."""
    return samplers.normal(jax.random.fold_in(key, k), (n, PANEL), dtype, None)


def _wy(x: Array, alpha: Array, active: Array, dtype: Any) -> tuple[Array, Array, Array]:
    """Compact WY factors of the reflectors whose (masked) vectors are the columns of `x`."""
    sigma = jnp.sqrt(jnp.sum(jnp.abs(x) ** 2, axis=0)).astype(dtype)
    mag = jnp.abs(alpha)
    safe = jnp.where(mag == 0, jnp.ones_like(mag), mag).astype(dtype)
    phase = jnp.where(mag == 0, jnp.ones_like(alpha), alpha / safe)
    # u_j = x_j + phase |x_j| e_j maps x_j to -phase |x_j| e_j without cancellation; R_jj is
    # -phase |x_j|, so Haar's phase fix multiplies Q's column j by -phase.
    return sigma, phase, active


def block_static(g: Array, s: int, b: int, dtype: Any) -> tuple[Array, Array, Array]:
    """``(U, T, d)`` of a block starting at row/column `s` with `b` reflectors, from its draw
    `g` restricted to rows ``s..n-1``: ``U`` is ``(n - s, b)`` and zero above its diagonal."""
    g = g[s:, :b]
    rows = g.shape[0]
    x = jnp.where(jnp.tri(rows, b, 0, dtype=bool), g, jnp.zeros((), dtype))
    alpha = jnp.diagonal(g)
    sigma, phase, _ = _wy(x, alpha, jnp.ones((b,), bool), dtype)
    u = x + jnp.eye(rows, b, dtype=dtype) * (phase * sigma)[None, :]
    return u, _t_factor(u, jnp.ones((b,), bool), dtype), -phase


def block_dynamic(
    key: KeyArray, k: Array, n: int, m: int, dtype: Any
) -> tuple[Array, Array, Array]:
    """`block_static` for a traced panel index: full-height ``U (n, PANEL)``, rows above each
    reflector masked to zero, columns past `m` inactive (zero vectors)."""
    s = k * PANEL
    g = _draw(key, k, n, dtype)
    r = jnp.arange(n)[:, None]
    c = jnp.arange(PANEL)[None, :]
    active = (s + jnp.arange(PANEL)) < m
    x = jnp.where((r >= s + c) & active[None, :], g, jnp.zeros((), dtype))
    alpha = jnp.where(active, g[jnp.minimum(s + jnp.arange(PANEL), n - 1), jnp.arange(PANEL)], 0)
    sigma, phase, _ = _wy(x, alpha, active, dtype)
    u = x + jnp.where(r == s + c, (phase * sigma)[None, :], jnp.zeros((), dtype))
    return u, _t_factor(u, active, dtype), -phase


def _t_factor(u: Array, active: Array, dtype: Any) -> Array:
    """``T = (striu(U^H U) + diag(U^H U)/2)^{-1}``; inactive (zero) columns get T_jj = 1."""
    gram = _mm(_adj(u), u)
    diag = jnp.where(active, jnp.diagonal(gram) / 2, jnp.ones((), dtype))
    tinv = jnp.triu(gram, 1) + jnp.diag(diag)
    eye = jnp.eye(u.shape[1], dtype=dtype)
    return jax.scipy.linalg.solve_triangular(tinv, eye, lower=False)


def tall(key: KeyArray, n: int, m: int, dtype: Any) -> Array:
    """The whole ``n x m`` (``n >= m``) Haar matrix, skipping the identity parts of each step.

    All blocks are drawn at once (one compiled sampler) and applied in an unrolled loop whose
    static slices skip rows above each block and columns that are still identity.
    """
    ks = blocks(m)
    panels = -(-m // PANEL)
    draws = jax.vmap(lambda k: _draw(key, k, n, dtype))(jnp.arange(panels))
    per = BLOCK // PANEL
    grouped = [jnp.concatenate(list(draws[k * per : (k + 1) * per]), axis=1) for k, _, _ in ks]
    refl = [(s, *block_static(grouped[k], s, b, dtype)) for k, s, b in ks]
    y = jnp.eye(n, m, dtype=dtype)
    for s, u, t, _ in reversed(refl):  # Q = B_1 (B_2 (... (B_K E_M)))
        ys = y[s:, s:]
        y = y.at[s:, s:].set(ys - _mm(u, _mm(t, _mm(_adj(u), ys))))
    d = jnp.concatenate([ph for *_, ph in refl])
    return y * d[None, :]


def tall_columns(key: KeyArray, n: int, m: int, cols: Array, dtype: Any) -> Array:
    """Columns `cols` (int vector) of the ``n x m`` Haar matrix, in ``n x len(cols)`` memory:
    a loop over blocks that redraws each block's reflectors from the key."""
    nblocks = -(-m // PANEL)

    def step(i, carry):
        y, d = carry
        k = nblocks - 1 - i
        u, t, ph = block_dynamic(key, k, n, m, dtype)
        d = jax.lax.dynamic_update_slice(d, ph, (k * PANEL,))
        return y - _mm(u, _mm(t, _mm(_adj(u), y))), d

    y0 = (jnp.arange(n)[:, None] == cols[None, :]).astype(dtype)
    d0 = jnp.zeros((nblocks * PANEL,), dtype)
    y, d = jax.lax.fori_loop(0, nblocks, step, (y0, d0))
    return y * d[cols][None, :]


def tall_rows(key: KeyArray, n: int, m: int, rows: Array, dtype: Any) -> Array:
    """Rows `rows` (int vector) of the ``n x m`` Haar matrix, in ``len(rows) x n`` memory:
    ``E_R^T B_1 B_2 ... B_K`` applied from the right, redrawing each block from the key."""
    nblocks = -(-m // PANEL)

    def step(k, carry):
        x, d = carry
        u, t, ph = block_dynamic(key, k, n, m, dtype)
        d = jax.lax.dynamic_update_slice(d, ph, (k * PANEL,))
        return x - _mm(_mm(_mm(x, u), t), _adj(u)), d

    x0 = (rows[:, None] == jnp.arange(n)[None, :]).astype(dtype)
    d0 = jnp.zeros((nblocks * PANEL,), dtype)
    x, d = jax.lax.fori_loop(0, nblocks, step, (x0, d0))
    return x[:, :m] * d[:m][None, :]


def matrix(key: KeyArray, n_rows: int, n_cols: int, dtype: Any) -> Array:
    """A Haar ``n_rows x n_cols`` matrix: orthonormal columns if tall, rows if wide."""
    if n_rows >= n_cols:
        return tall(key, n_rows, n_cols, dtype)
    return tall(key, n_cols, n_rows, dtype).T


def matrix_block(
    key: KeyArray, n_rows: int, n_cols: int, rows: Array, cols: Array, dtype: Any
) -> Array:
    """The ``rows x cols`` block of `matrix` (same values), in memory ~ the smaller of
    ``N x len(cols)`` and ``len(rows) x N`` of the tall view (N = its long side)."""
    transposed = n_rows < n_cols
    n, m = (n_cols, n_rows) if transposed else (n_rows, n_cols)
    r, c = (cols, rows) if transposed else (rows, cols)
    if n * c.shape[0] <= r.shape[0] * n:
        block = jnp.take(tall_columns(key, n, m, c, dtype), r, axis=0)
    else:
        block = jnp.take(tall_rows(key, n, m, r, dtype), c, axis=1)
    return block.T if transposed else block
