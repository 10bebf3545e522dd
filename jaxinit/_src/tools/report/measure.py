"""The measurements of ``jaxinit report``: every parameter's std and orthogonality error (on
device, in one jitted reduction), the fingerprint, the signal propagation, and the cold init
timings of jaxinit against Flax's own init.

The fingerprint is the SHA-256 of, for each parameter in sorted path order, its path, shape,
dtype and the raw little-endian bytes of its gathered values. Values depend only on the key and
the path, so it is the same for every device count and mesh -- bit for bit for every scheme but
``orthogonal``, whose matrix products sum in a mesh-dependent order (agreement <= 2e-6).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core.paths import join_path
from jaxinit._src.tools.report.environment import call_factory

#: Measured std within this many standard errors of the target counts as on target; the
#: standard error of a sample std is ``std * sqrt((kurtosis - 1) / (4 n))`` <= ``std/sqrt(2n)``
#: for the normal, truncated-normal, uniform and orthogonal draws of the schemes.
STD_Z = 6.0


class View(NamedTuple):
    """How an orthogonal parameter is a stack of matrices: transpose it by `perm` to
    ``(*batch, *rows, column)``, then reshape to ``(prod(batch), rows, cols)``."""

    perm: tuple[int, ...]
    n_batch: int
    cols: int
    scale: float


def parameters(model: Any) -> dict[str, jax.Array]:
    """``{path: array}`` of the model's ``nnx.Param``s, paths joined by ``/``, sorted."""
    from flax import nnx

    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return dict(sorted((join_path(path), var[...]) for path, var in flat))


def matrix_view(init: Any, shape: tuple[int, ...]) -> View | None:
    """The matrix view of a parameter drawn by `orthogonal`; None for any other initializer
    (or a zero scale)."""
    from jaxinit._src.schemes.orthogonal import Orthogonal

    if not isinstance(init, Orthogonal) or not float(init.scale) or len(shape) < 2:
        return None
    col, batch = init.axes(shape)
    rows = tuple(i for i in range(len(shape)) if i != col and i not in batch)
    return View((*batch, *rows, col), len(batch), shape[col], float(init.scale))


def _orthogonality_error(x: jax.Array, view: View) -> jax.Array:
    """max |QᵀQ - I| (QQᵀ when there are fewer rows than columns) of ``x / scale`` viewed as
    a stack of matrices."""
    y = jnp.transpose(x, view.perm).astype(jnp.float32) / view.scale
    q = y.reshape(math.prod(y.shape[: view.n_batch]), -1, view.cols)
    spec = "bij,bik->bjk" if q.shape[1] >= view.cols else "bji,bki->bjk"
    gram = jnp.einsum(spec, q, q, precision=jax.lax.Precision.HIGHEST)
    return jnp.max(jnp.abs(gram - jnp.eye(gram.shape[-1], dtype=gram.dtype)))


def measure(
    arrays: Sequence[jax.Array], views: Sequence[View | None]
) -> tuple[list[float], list[float | None]]:
    """Each array's std and, where `views` gives a matrix view, its orthogonality error,
    computed on device in one jitted reduction: only the scalars come to the host."""

    def stats(xs: list[jax.Array]) -> tuple[list[jax.Array], list[jax.Array]]:
        stds = [jnp.std(x.astype(jnp.float32)) for x in xs]
        errors = [_orthogonality_error(x, v) for x, v in zip(xs, views, strict=True) if v]
        return stds, errors

    stds, errors = jax.device_get(jax.jit(stats)(list(arrays)))
    it = iter(errors)
    return [float(s) for s in stds], [float(next(it)) if v else None for v in views]


def fingerprint(params: Mapping[str, jax.Array]) -> str:
    """SHA-256 (hex) of each parameter's path, shape, dtype and raw little-endian bytes, in
    sorted path order; the same for every mesh when the values are the same bits."""
    digest = hashlib.sha256()
    for path in sorted(params):
        x = np.asarray(params[path])
        x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<"))
        digest.update(f"{path}\0{x.shape}\0{x.dtype.name}\0".encode())
        digest.update(x.tobytes())
    return digest.hexdigest()


def std_tolerance(target: float, size: int) -> float:
    """How far a measured std may be from `target` over `size` values (`STD_Z` std errors)."""
    return STD_Z * target / math.sqrt(2 * max(size, 1)) + 1e-7


def activation_stds(model: Any, mesh: Any, seed: int) -> list[float] | None:
    """``model.activation_stds(key)`` (jitted; the residual-stream std after the embedding and
    each block on a random batch), or None when the model has no such method."""
    from flax import nnx

    if not callable(getattr(model, "activation_stds", None)):
        return None
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda s, k: nnx.merge(graphdef, s).activation_stds(k))
    with jax.set_mesh(mesh):
        out = forward(state, jax.random.fold_in(jax.random.key(seed), 1))
    return [float(v) for v in np.asarray(out)]


# -- timing ----------------------------------------------------------------------------------------
def _cold(fn: Callable[[], Any]) -> tuple[Any, float]:
    """`fn()` after ``jax.clear_caches()`` (so tracing and compiling count), and its seconds."""
    jax.clear_caches()
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t0


def warm_up(mesh: Any) -> None:
    """Pays the process's one-time costs (lazy imports, first dispatch) for both contenders on
    a tiny model, so that neither timing carries them."""
    from flax import nnx

    import jaxinit
    import jaxinit.flax

    tiny = lambda: nnx.Sequential(nnx.Embed(4, 8, rngs=nnx.Rngs(0)),
                                  nnx.Linear(8, 8, rngs=nnx.Rngs(0)))  # fmt: skip
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(tiny)
        rules = [("", jaxinit.normal())]
        jax.block_until_ready(nnx.state(jaxinit.flax.reinit(abstract, jax.random.key(0), rules)))
        jax.block_until_ready(jax.jit(lambda: nnx.state(tiny()))())


def init_jaxinit(
    factory: Callable[..., Any], rules: Sequence[Any], mesh: Any, seed: int
) -> tuple[Any, float]:
    """The model from ``nnx.eval_shape`` + `jaxinit.flax.reinit` under `mesh`, and the
    seconds that took (cold)."""
    from flax import nnx

    import jaxinit.flax

    def init() -> Any:
        abstract = nnx.eval_shape(lambda: call_factory(factory, seed))
        model = jaxinit.flax.reinit(abstract, jax.random.key(seed), rules, mesh=mesh)
        jax.block_until_ready(nnx.state(model))
        return model

    with jax.set_mesh(mesh):
        return _cold(init)


def time_flax(factory: Callable[..., Any], mesh: Any, seed: int) -> float:
    """Seconds (cold) of Flax's own init: ``jax.jit(lambda: nnx.state(factory(rngs)))()``."""
    from flax import nnx

    with jax.set_mesh(mesh):
        state, seconds = _cold(jax.jit(lambda: nnx.state(call_factory(factory, seed))))
    del state
    return seconds
