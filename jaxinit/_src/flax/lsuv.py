"""LSUV: layer-sequential unit-variance initialization (Mishkin & Matas 2016), for Flax NNX.

A data-dependent initialization: optionally re-initialize every layer's kernel orthogonally (and
its bias to zero), then walk the layers in the order the forward pass calls them and rescale each
kernel until the layer's output on a batch has the target standard deviation.

Layer outputs are captured during one traced forward pass, so the statistics of every layer come
out of one ``jax.jit``-compiled computation (compiled once per call, whatever the number of
iterations). Here the forward pass runs on a throwaway copy of the model (``nnx.split``/
``nnx.merge`` inside the jitted function), whose chosen layers get their class swapped for a
subclass that reports each ``__call__``'s output. The user's model and Flax's classes are never
patched, and the forward pass's side effects (BatchNorm statistics, RNG counts) are discarded.
The linen form, `lsuv_linen` (lsuv_linen.py), reports each layer's output through
``nn.intercept_methods``; the argument checks, call records, pre-initialization and loop of both
are in lsuv_core.py.

Kernels are rescaled in place of the old ones by one jitted multiply, so every parameter keeps its
sharding; the orthogonal pre-initialization goes through `jaxinit.flax.reinit` (each kernel
generated straight into its sharding, with the fan axes of its layer).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._src.core import keys
from jaxinit._src.core.paths import join_path
from jaxinit._src.flax import layers as flax_layers
from jaxinit._src.flax import lsuv_core
from jaxinit._src.flax import reinit as flax_adapter

#: The reporter of the layer calls being traced now (a layer, its output), or None.
_REPORT: contextvars.ContextVar[Callable[[Any, Any], None] | None] = contextvars.ContextVar(
    "jaxinit_lsuv_report", default=None
)
_SPIES: dict[type, type] = {}


def _spy_class(cls: type) -> type:
    """A subclass of the NNX layer class `cls` whose ``__call__`` reports its output (cached:
    each new NNX class registers itself as a graph node type)."""
    spy = _SPIES.get(cls)
    if spy is None:

        def call(self, *args, **kwargs):
            out = cls.__call__(self, *args, **kwargs)  # type: ignore[operator]
            report = _REPORT.get()
            if report is not None:
                report(self, out)
            return out

        namespace = {"__call__": call, "__module__": cls.__module__}
        flags = {"pytree": cls._pytree__is_pytree} if hasattr(cls, "_pytree__is_pytree") else {}
        spy = _SPIES[cls] = type(cls)(cls.__name__, (cls,), namespace, **flags)
    return spy


@contextlib.contextmanager
def _spying(model: Any, chosen: Callable[[str, Any], bool], report: Callable[[str, Any], None]):
    """Within the block, every chosen layer of `model` (a throwaway copy) reports its output
    as ``report(path, output)``."""
    from flax import nnx

    paths: dict[int, str] = {}
    for keys_, module in nnx.iter_modules(model):
        path = join_path(keys_)
        if id(module) not in paths and chosen(path, module):
            paths[id(module)] = path
            module.__class__ = _spy_class(type(module))
    token = _REPORT.set(lambda module, out: report(paths[id(module)], out))
    try:
        yield
    finally:
        _REPORT.reset(token)


def _nnx_default(module: Any) -> bool:
    from flax import nnx

    return isinstance(
        module, nnx.Linear | nnx.LinearGeneral | nnx.Conv | nnx.ConvTranspose | nnx.Einsum
    )


def _nnx_has_kernel(module: Any) -> bool:
    from flax import nnx

    return isinstance(getattr(module, "kernel", None), nnx.Param)


def lsuv(
    model: Any,
    batch: Any,
    *,
    key: jax.Array | None = None,
    orthogonal: bool = True,
    target_std: float = 1.0,
    tol: float = 0.1,
    max_iters: int = 10,
    layers: Sequence[str | re.Pattern[str]] | None = None,
    forward: Callable[[Any, Any], Any] | None = None,
) -> Any:
    r"""LSUV-initializes an NNX model in place: each layer's output on `batch` gets `target_std`.

    Optionally (``orthogonal=True``) every chosen layer's kernel is first re-initialized with an
    orthogonal matrix over its layer's (fan_in, fan_out) view -- conv, ``LinearGeneral`` and
    ``Einsum`` kernels along their real fan axes -- and its bias set to zero. Then, for each
    layer :math:`l` in the order the forward pass first calls it, with :math:`\sigma_l` the
    standard deviation of all elements of its output on `batch` (pooled over its calls):

    .. math:: W_l \leftarrow W_l \, \frac{\sigma^*}{\sigma_l}
              \quad \text{until} \quad |\sigma_l - \sigma^*| \le \text{tol}
              \ \text{or max\_iters rescalings,}

    with :math:`\sigma^*` = `target_std`. Without a bias one rescaling is exact; a bias makes it
    iterate. Biases are otherwise left alone (LSUV-pytorch also shifts them to center the
    output; the paper does not). The statistics of all layers come from one ``jax.jit``
    -compiled forward pass on a throwaway copy of the model, whose side effects (BatchNorm
    statistics, RNG counts) are discarded. Every parameter keeps its sharding.

    Layers called inside an NNX transform within the forward pass (``nnx.scan``, ``nnx.vmap``,
    ``nnx.remat``) are not supported: their outputs live in the transform's trace.

    Args:
      model: the ``nnx.Module``; updated in place and returned.
      batch: the input: an array, or any pytree of arrays that `forward` takes. Every array
        needs at least ``MIN_BATCH = 2`` examples along its leading axis, and every layer at
        least ``MIN_ELEMENTS = 32`` output elements on it.
      key: the key of the orthogonal pre-initialization (required when `orthogonal`); kernel
        ``p`` gets ``jaxinit.flax.path_key(key, p)``.
      orthogonal: whether to pre-initialize orthogonally (kernels) and with zeros (biases).
      target_std: the target output std :math:`\sigma^*` (> 0).
      tol: the accepted :math:`|\sigma_l - \sigma^*|` (> 0).
      max_iters: the most rescalings per layer (>= 1).
      layers: regular expressions ``re.search``-ed in module paths (``"blocks/0/up"``): LSUV
        takes the modules with an ``nnx.Param`` ``kernel`` whose path matches one. Default:
        every ``Linear``, ``LinearGeneral``, ``Conv``, ``ConvTranspose`` and ``Einsum``.
        Chosen layers the forward pass never calls are left as they are.
      forward: ``forward(model, batch) -> output``; default ``model(batch)``.

    Returns:
      `model`.

    Raises:
      ValueError: for a bad `target_std`, `tol` or `max_iters`, a missing `key`, a `batch`
        too small, `layers` that select nothing, or a non-finite layer output.
      TypeError: for arguments of the wrong type.

    Warns:
      UserWarning: naming each layer that did not converge in `max_iters`, whose output is
        constant (it cannot be rescaled), or that is chosen but never called by the forward
        pass (it keeps its values).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinit.flax
      >>> from flax import nnx
      >>> model = nnx.Sequential(nnx.Linear(64, 128, use_bias=False, rngs=nnx.Rngs(0)),
      ...                        nnx.relu, nnx.Linear(128, 10, use_bias=False, rngs=nnx.Rngs(1)))
      >>> x = jax.random.normal(jax.random.key(1), (256, 64))
      >>> model = jaxinit.flax.lsuv(model, x, key=jax.random.key(0))
      >>> h = model.layers[0](x)
      >>> round(float(h.std()), 4), round(float(model.layers[2](nnx.relu(h)).std()), 4)
      (1.0, 1.0)

    References:
      Mishkin & Matas, `All you need is a good init <https://arxiv.org/abs/1511.06422>`_,
      ICLR 2016.
    """
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise TypeError(f"`model` must be an nnx.Module; got {type(model).__name__}.")
    lsuv_core.check_args(target_std, tol, max_iters, orthogonal, key)
    if forward is not None and not callable(forward):
        raise TypeError(f"`forward` must be callable(model, batch); got {forward!r}.")
    run = forward if forward is not None else (lambda m, b: m(b))
    patterns = lsuv_core.compile_patterns(layers)
    lsuv_core.check_batch(batch)
    modules: dict[str, Any] = {join_path(p): m for p, m in nnx.iter_modules(model)}

    def chosen(path: str, module: Any) -> bool:
        return lsuv_core.is_chosen(path, _nnx_default(module), _nnx_has_kernel(module), patterns)

    graphdef, state = nnx.split(model)
    calls: dict[str, lsuv_core.LayerCall] = {}

    def probe(path: str, out: Any) -> None:
        def axes() -> Any:
            layer = flax_layers.nnx_axes(modules[path]).get("kernel")
            shape = modules[path].kernel.get_value().shape
            return layer.for_shape(shape) if layer is not None else None

        lsuv_core.record_call(calls, path, out, axes)

    def traced(report: Callable[[str, Any], None]) -> Callable[[Any, Any], None]:
        def go(state: Any, batch: Any) -> None:
            copy = nnx.merge(graphdef, state)
            with _spying(copy, chosen, report):
                run(copy, batch)

        return go

    jax.eval_shape(traced(probe), state, batch)
    kernels = [p for p, m in modules.items() if _nnx_has_kernel(m)]
    lsuv_core.check_calls(calls, patterns, kernels, batch)
    lsuv_core.warn_uncalled([p for p, m in modules.items() if chosen(p, m) and p not in calls])
    paths = list(calls)
    if orthogonal:
        rules = lsuv_core.preinit_rules(calls)
        flax_adapter.reinit(model, keys.check_key(key), rules, strict=False, layer_axes=False)

    def stats(state: Any, batch: Any) -> jax.Array:
        outputs: dict[str, list[jax.Array]] = {p: [] for p in paths}
        traced(lambda path, out: outputs[path].append(out))(state, batch)
        return jnp.stack([lsuv_core.output_std(outputs[p]) for p in paths])

    jitted = jax.jit(stats)

    def scale(path: str, factor: float) -> None:
        kernel = modules[path].kernel
        kernel.set_value(lsuv_core.scaled(kernel.get_value(), factor))

    measure = lambda: np.asarray(jitted(nnx.state(model), batch))
    lsuv_core.calibrate(paths, measure, scale, float(target_std), float(tol), int(max_iters))
    return model
