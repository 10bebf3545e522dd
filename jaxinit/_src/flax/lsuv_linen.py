"""LSUV for linen: `lsuv_linen`, the functional form of lsuv.py's NNX `lsuv`.

Layer outputs are captured with ``nn.intercept_methods`` during one traced forward pass; the
argument checks, the orthogonal pre-initialization, the statistics and the rescaling loop are
shared with the NNX form (lsuv_core.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import keys
from jaxinit._src.core.paths import join_path
from jaxinit._src.flax import layers as flax_layers
from jaxinit._src.flax import lsuv_core
from jaxinit._src.flax import reinit as flax_adapter
from jaxinit._src.flax import targets as flax_targets


def _linen_default(module: Any) -> bool:
    import flax.linen as nn

    return isinstance(module, nn.Dense | nn.DenseGeneral | nn.Conv | nn.ConvTranspose | nn.Einsum)


@contextlib.contextmanager
def _intercepting(chosen: Callable[[str, Any], bool], report: Callable[..., None]) -> Iterator:
    """Within the block, every chosen linen layer's ``__call__`` reports
    ``report(path, module, args, kwargs, output)``."""
    import flax.linen as nn

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__":
            path = join_path(context.module.path)
            if chosen(path, context.module):
                report(path, context.module, args, kwargs, out)
        return out

    with nn.intercept_methods(interceptor):
        yield


def _tree_arrays(tree: Any) -> dict[str, Any]:
    """Parameter path -> array (boxes unwrapped) of a linen params pytree."""
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=flax_targets.is_box)[0]
    out = {}
    for kp, x in flat:
        value = x.unbox(apply_constraint=False) if flax_targets.is_box(x) else x
        out[join_path(kp)] = value
    return out


def lsuv_linen(
    apply_fn: Callable[..., Any],
    params: Any,
    batch: Any,
    *,
    layers: Sequence[str | re.Pattern[str]] | None = None,
    key: jax.Array | None = None,
    orthogonal: bool = True,
    target_std: float = 1.0,
    tol: float = 0.1,
    max_iters: int = 10,
) -> Any:
    r"""LSUV for linen: new `params` whose layers' outputs on `batch` have std `target_std`.

    The functional form of :func:`lsuv` (see it for the algorithm): the same orthogonal
    pre-initialization, rescaling rule, tolerances, warnings and errors, and every parameter keeps
    its sharding. The input `params` are left untouched. Layer outputs are captured with
    ``nn.intercept_methods``; layers inside a lifted transform (``nn.scan``, ``nn.vmap``,
    ``nn.remat``) are not supported.

    .. math:: W_l \leftarrow W_l \, \frac{\sigma^*}{\sigma_l}
              \quad \text{until} \quad |\sigma_l - \sigma^*| \le \text{tol}

    Args:
      apply_fn: called as ``apply_fn({"params": params}, batch)``, e.g. ``module.apply``. For
        other collections or arguments, wrap it: ``lambda v, x: module.apply({**v,
        "batch_stats": stats}, x, train=False)``.
      params: the ``params`` collection (``variables["params"]``); ``nn.Partitioned`` boxes
        stay boxed.
      batch: the input, as for :func:`lsuv`.
      layers: regular expressions ``re.search``-ed in module paths (``"Dense_0"``): LSUV takes
        the called modules with a ``kernel`` parameter whose path matches one. Default: every
        ``Dense``, ``DenseGeneral``, ``Conv``, ``ConvTranspose`` and ``Einsum``.
      key: the key of the orthogonal pre-initialization (required when `orthogonal`).
      orthogonal: whether to pre-initialize orthogonally (kernels) and with zeros (biases).
      target_std: the target output std (> 0).
      tol: the accepted distance of each output std from `target_std` (> 0).
      max_iters: the most rescalings per layer (>= 1).

    Returns:
      The new params pytree, of the same structure.

    Raises:
      ValueError, TypeError: as :func:`lsuv`.

    Warns:
      UserWarning: as :func:`lsuv`.

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jaxinit.flax
      >>> net = nn.Sequential([nn.Dense(128, use_bias=False), nn.tanh, nn.Dense(10)])
      >>> x = jax.random.normal(jax.random.key(1), (256, 64))
      >>> params = net.init(jax.random.key(0), x)["params"]
      >>> new = jaxinit.flax.lsuv_linen(net.apply, params, x, key=jax.random.key(0))
      >>> h = x @ new["layers_0"]["kernel"]
      >>> round(float(h.std()), 4)
      1.0

    References:
      Mishkin & Matas, `All you need is a good init <https://arxiv.org/abs/1511.06422>`_,
      ICLR 2016.
    """
    if not callable(apply_fn):
        raise TypeError(f"`apply_fn` must be callable(variables, batch); got {apply_fn!r}.")
    lsuv_core.check_args(target_std, tol, max_iters, orthogonal, key)
    patterns = lsuv_core.compile_patterns(layers)
    lsuv_core.check_batch(batch)
    arrays = _tree_arrays(params)
    kernels = {p[: -len("/kernel")] for p in arrays if p.endswith("/kernel")}

    seen: set[str] = set()  # every module path the forward pass calls

    def chosen(path: str, module: Any) -> bool:
        seen.add(path)
        return lsuv_core.is_chosen(path, _linen_default(module), path in kernels, patterns)

    def run(params: Any, batch: Any, report: Callable[..., None]) -> None:
        with _intercepting(chosen, report):
            apply_fn({"params": params}, batch)

    calls: dict[str, lsuv_core.LayerCall] = {}

    def probe(path: str, module: Any, args: Any, kwargs: Any, out: Any) -> None:
        def axes() -> Any:
            layer = flax_layers.linen_axes(module, args, kwargs).get("kernel")
            shape = arrays[f"{path}/kernel"].shape
            return layer.for_shape(shape) if layer is not None else None

        lsuv_core.record_call(calls, path, out, axes)

    jax.eval_shape(lambda p, b: run(p, b, probe), params, batch)
    lsuv_core.check_calls(calls, patterns, sorted(kernels), batch)
    wanted = lambda p: any(q.search(p) for q in patterns) if patterns else True
    lsuv_core.warn_uncalled(sorted(p for p in kernels - seen if wanted(p)))
    paths = list(calls)
    if orthogonal:
        rules = lsuv_core.preinit_rules(calls)
        root = keys.check_key(key)
        params = flax_adapter.reinit(params, root, rules, strict=False, layer_axes=False)
    arrays = _tree_arrays(params)
    kernel_values = {f"{p}/kernel": arrays[f"{p}/kernel"] for p in paths}
    _, write = flax_targets.tree_leaves(params, {}, None, False)

    def stats(params: Any, batch: Any) -> jax.Array:
        outputs: dict[str, list[jax.Array]] = {p: [] for p in paths}
        run(params, batch, lambda path, m, a, k, out: outputs[path].append(out))
        return jnp.stack([lsuv_core.output_std(outputs[p]) for p in paths])

    jitted = jax.jit(stats)

    def scale(path: str, factor: float) -> None:
        kernel_values[f"{path}/kernel"] = lsuv_core.scaled(kernel_values[f"{path}/kernel"], factor)

    measure = lambda: np.asarray(jitted(write(kernel_values), batch))
    lsuv_core.calibrate(paths, measure, scale, float(target_std), float(tol), int(max_iters))
    return write(kernel_values)
