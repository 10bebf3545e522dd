"""The model report of ``jaxinit report`` (DESIGN.md §9): build, initialize, measure, describe.

`run` builds a model abstractly under a ``("data", "model")`` mesh over the chosen devices
(``nnx.eval_shape``), initializes it with a scheme's rules (`jaxinit.flax.reinit`, each
parameter straight into its shard), times that against Flax's own jitted init, measures every
parameter's std (and orthogonality) on device in one jitted reduction, and fingerprints the
values. `plot` draws target vs measured std and the signal propagation. The command-line side
(options, the rich table) is in cli.py.

The fingerprint is the SHA-256 of, for each parameter in sorted path order, its path, shape,
dtype and the raw little-endian bytes of its gathered values. Values depend only on the key and
the path, so it is the same for every device count and mesh -- bit for bit for every scheme but
``orthogonal``, whose matrix products sum in a mesh-dependent order (agreement <= 2e-6).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import inspect
import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

#: The embedded reference model (reference_model.py) and its muP base width.
REFERENCE = "jaxinit._src.reference_model:reference"
REFERENCE_BASE = "jaxinit._src.reference_model:reference_base"
#: Simulated CPU devices when ``--devices`` is not given.
DEFAULT_CPU_DEVICES = 8
DEFAULT_SCHEME = "gpt2"
MESH_AXES = ("data", "model")
#: Measured std within this many standard errors of the target counts as on target; the
#: standard error of a sample std is ``std * sqrt((kurtosis - 1) / (4 n))`` <= ``std/sqrt(2n)``
#: for the normal, truncated-normal, uniform and orthogonal draws of the schemes.
STD_Z = 6.0

#: A progress hook: ``with stage("what is happening"): ...``.
Stage = Callable[[str], AbstractContextManager[Any]]


class ReportError(ValueError):
    """A bad option of ``jaxinit report`` (the message names it) or a model it cannot handle."""


# -- devices and mesh ------------------------------------------------------------------------------
def check_device_count(value: Any) -> int:
    """`value` as a device count (a positive int), else `ReportError` naming ``--devices``."""
    try:
        n = int(value, 10) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        n = None
    if n is None or n < 1 or isinstance(value, bool | float):
        raise ReportError(f"`--devices` must be a positive integer; got {value!r}.")
    return n


def configure_devices(n: int | None) -> bool:
    """Asks JAX for `n` CPU devices (default `DEFAULT_CPU_DEVICES`) before its backends start.

    Returns False when JAX had already started (then the devices it has are used, see
    `select_devices`). Other backends (GPU, TPU) are not affected.
    """
    try:
        jax.config.update("jax_num_cpu_devices", DEFAULT_CPU_DEVICES if n is None else n)
    except RuntimeError:  # backends already initialized: the device count is fixed
        return False
    return True


def device_count_error(n: int, available: int, platform: str, configured: bool) -> str | None:
    """Why `n` devices cannot be used when `available` `platform` devices exist (None: they can)."""
    if n <= available:
        return None
    if platform == "cpu" and not configured:
        return (
            f"`--devices {n}`: JAX was already started in this process with {available} CPU "
            f"device(s), so it cannot simulate {n}. Run `jaxinit report` in a fresh process, or "
            f"choose --devices 1..{available}."
        )
    return (
        f"`--devices {n}` is more than the {available} {platform} device(s) available; choose "
        f"1..{available} (on CPU any count is simulated)."
    )


def select_devices(n: int | None, configured: bool = True) -> list[Any]:
    """The first `n` local devices (all of them when None), or `ReportError`."""
    devices = jax.local_devices()
    want = len(devices) if n is None else n
    error = device_count_error(want, len(devices), devices[0].platform, configured)
    if error:
        raise ReportError(error)
    return devices[:want]


def make_mesh(devices: Sequence[Any]) -> jax.sharding.Mesh:
    """A ``("data", "model")`` mesh: model 2 when the count is even, else 1.

    Auto axes, so that Flax's own init and the forward pass of the signal propagation get their
    shardings propagated without explicit-sharding annotations of every activation.
    """
    model = 2 if len(devices) % 2 == 0 else 1
    auto = (jax.sharding.AxisType.Auto,) * 2
    return jax.make_mesh((len(devices) // model, model), MESH_AXES, auto, devices=devices)


# -- the model -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _cwd_importable() -> Iterator[None]:
    """Modules in the current directory are importable meanwhile (as with ``python -m``)."""
    added = "" not in sys.path
    if added:
        sys.path.insert(0, "")
    try:
        yield
    finally:
        if added:
            sys.path.remove("")


def load_factory(spec: str) -> Callable[..., Any]:
    """The callable named by ``module:attribute`` (the current directory is importable)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ReportError(
            f"`--model` must be MODULE:FACTORY, e.g. `mypkg.models:make_model`; got {spec!r}."
        )
    try:
        with _cwd_importable():
            module = importlib.import_module(module_name)
    except Exception as e:
        raise ReportError(
            f"`--model {spec}`: cannot import module {module_name!r} ({type(e).__name__}: {e})."
        ) from e
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise ReportError(f"`--model {spec}`: {module_name!r} has no attribute {attr!r}.")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ReportError(
            f"`--model {spec}` is not a factory: a callable returning an nnx.Module, called "
            f"with `rngs=nnx.Rngs(seed)` if it takes `rngs`, else with no arguments; got a "
            f"{type(factory).__name__}."
        )
    return factory


def call_factory(factory: Callable[..., Any], seed: int) -> Any:
    """``factory(rngs=nnx.Rngs(seed))`` if it takes ``rngs``, else ``factory()``."""
    from flax import nnx

    try:
        takes_rngs = "rngs" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins and some callables have no signature
        takes_rngs = False
    return factory(rngs=nnx.Rngs(seed)) if takes_rngs else factory()


class _NotAModuleError(Exception):
    """The factory returned something else than an ``nnx.Module`` (carries it)."""


def build_abstract(factory: Callable[..., Any], spec: str, mesh: Any, seed: int) -> Any:
    """The model created abstractly (``nnx.eval_shape``) under `mesh`: shapes and shardings."""
    from flax import nnx

    def make() -> Any:
        model = call_factory(factory, seed)
        if not isinstance(model, nnx.Module):
            raise _NotAModuleError(model)
        return model

    try:
        with jax.set_mesh(mesh):
            return nnx.eval_shape(make)
    except _NotAModuleError as e:
        raise ReportError(
            f"`--model {spec}` returned a {type(e.args[0]).__name__}, not an nnx.Module (linen "
            "modules and parameter trees are not supported by the report)."
        ) from None
    except Exception as e:
        raise ReportError(
            f"`--model {spec}`: building the model raised {type(e).__name__}: {e}"
        ) from e


def describe_model(spec: str, model: Any) -> str:
    """The reference model with its size, or the ``--model`` spec."""
    cfg = getattr(model, "cfg", None)
    if spec != REFERENCE or cfg is None:
        return spec
    return (
        f"reference Llama ({cfg.layers} blocks, d={cfg.dim}, {cfg.heads} heads, SwiGLU "
        f"{cfg.hidden}, vocab {cfg.vocab})"
    )


# -- schemes ---------------------------------------------------------------------------------------
#: A scheme's rules from the abstract model and (muP only) the abstract base-width model.
RulesFn = Callable[[Any, Any], Sequence[tuple[Any, Any]]]
_NORM, _BIAS, _EMBED, _KERNEL = (rf"(^|/){n}$" for n in ("scale", "bias", "embedding", "kernel"))


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A named initialization scheme of the report.

    Attributes:
      summary: what it draws, in one line.
      rules: (abstract model, abstract base model or None) -> ``(pattern, initializer)`` rules.
      bitwise: whether its values are the same bits on every mesh (the fingerprint's tier).
      needs_base: whether it needs a base-width model (muP: the reference model only).
    """

    summary: str
    rules: RulesFn
    bitwise: bool = True
    needs_base: bool = False


def _variance(kernel: str) -> RulesFn:
    """Kernels by the named jaxinit factory, embeddings N(0, 1/features), norms 1, biases 0."""

    def rules(model: Any, base: Any) -> Sequence[tuple[Any, Any]]:
        import jaxinit

        embed = jaxinit.variance_scaling(1.0, "fan_in", "normal")  # Embed: fan_in = features
        kernel_init = getattr(jaxinit, kernel)()
        return [(_NORM, jaxinit.ones), (_BIAS, jaxinit.zeros), (_EMBED, embed),
                (_KERNEL, kernel_init)]  # fmt: skip

    return rules


def depth(model: Any) -> int:
    """The number of blocks: residual output projections (attention and MLP) / 2, at least 1."""
    import jaxinit.flax
    import jaxinit.recipes

    pattern = re.compile(jaxinit.recipes.PATTERNS["residual"])
    paths = [row.path for row in jaxinit.flax.plan(model, [("", None)])]
    return max(1, sum(bool(pattern.search(p)) for p in paths) // 2)


def _gpt2(model: Any, base: Any) -> Sequence[tuple[Any, Any]]:
    import jaxinit.recipes

    return jaxinit.recipes.gpt2(depth(model))


def _mup(model: Any, base: Any) -> Sequence[tuple[Any, Any]]:
    import jaxinit.recipes

    return jaxinit.recipes.mup(model, base)


def _framework(name: str) -> RulesFn:
    def rules(model: Any, base: Any) -> Sequence[tuple[Any, Any]]:
        import jaxinit.flax

        return jaxinit.flax.framework_rules(name, model)

    return rules


SCHEMES: Mapping[str, Scheme] = {
    "gpt2": Scheme("N(0, 0.02), residual projections 0.02/sqrt(2L) (GPT-2, nanoGPT)", _gpt2),
    "lecun": Scheme("lecun_normal kernels, embeddings N(0, 1/d), norms 1",
                    _variance("lecun_normal")),
    "he": Scheme("he_normal kernels, embeddings N(0, 1/d), norms 1", _variance("he_normal")),
    "glorot": Scheme("glorot_normal kernels, embeddings N(0, 1/d), norms 1",
                     _variance("glorot_normal")),
    "orthogonal": Scheme("orthogonal kernels, embeddings N(0, 1/d), norms 1",
                         _variance("orthogonal"), bitwise=False),
    "mup": Scheme("muP vs the 4x narrower model (base: fan_in normal)", _mup, needs_base=True),
    "torch": Scheme("PyTorch's defaults (framework_rules)", _framework("torch")),
    "keras": Scheme("Keras's defaults (framework_rules)", _framework("keras")),
    "haiku": Scheme("Haiku's defaults (framework_rules)", _framework("haiku")),
    "flax": Scheme("Flax's defaults (framework_rules)", _framework("flax")),
}  # fmt: skip


def get_scheme(name: str, model_spec: str = REFERENCE) -> Scheme:
    """The scheme called `name`, checked against the model, or `ReportError`."""
    if name not in SCHEMES:
        raise ReportError(
            f"`--scheme` must be one of {', '.join(map(repr, SCHEMES))}; got {name!r}."
        )
    scheme = SCHEMES[name]
    if scheme.needs_base and model_spec != REFERENCE:
        raise ReportError(
            f"`--scheme {name}` needs a base-width model, which only the embedded reference "
            "model provides; choose another scheme for a `--model`."
        )
    return scheme


# -- measuring -------------------------------------------------------------------------------------
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
    return dict(sorted(("/".join(map(str, path)), var[...]) for path, var in flat))


def matrix_view(init: Any, shape: tuple[int, ...]) -> View | None:
    """The matrix view of a parameter drawn by `orthogonal`; None for any other initializer
    (or a zero scale)."""
    from jaxinit._src.orthogonal import Orthogonal
    from jaxinit._src.validation import normalize_axes

    if not isinstance(init, Orthogonal) or not float(init.scale) or len(shape) < 2:
        return None
    col = normalize_axes("column_axis", init.column_axis, len(shape))[0]
    batch = normalize_axes("batch_axis", init.batch_axis, len(shape))
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


# -- the report ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    """One parameter of the report (the JSON row, plus its size)."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    sharding: str
    initializer: str
    fan_in: float | None
    fan_out: float | None
    target_std: float | None
    measured_std: float
    orthogonality_error: float | None
    size: int

    @property
    def on_target(self) -> bool | None:
        """Whether the measured std is within `std_tolerance` of the target (None: no target)."""
        if self.target_std is None:
            return None
        tol = std_tolerance(self.target_std, self.size)
        return abs(self.measured_std - self.target_std) <= tol


def describe_sharding(sharding: Any) -> str:
    """``P(data, model)``-style text, ``replicated``, or ``one device`` (no sharding)."""
    spec = getattr(sharding, "spec", None)
    if sharding is None or spec is None:
        return "one device"
    if all(entry is None for entry in spec):
        return "replicated"
    return str(spec).replace("'", "")


def describe_init(init: Any) -> str:
    """An initializer's name and the parameters that differ from its defaults, less the axes
    (they are the layer's) and dtype: ``normal(stddev=0.02)``, ``lecun_normal()``."""
    from jaxinit._src.base import BaseInitializer

    if init is None:
        return "kept"
    if not isinstance(init, BaseInitializer):
        return getattr(init, "__name__", type(init).__name__)
    shown = []
    for f in dataclasses.fields(cast(Any, init)):
        value = getattr(init, f.name)
        if f.name == "dtype" or f.name.endswith("_axis") or value == f.default:
            continue
        shown.append(f"{f.name}={value:.4g}" if isinstance(value, float) else f"{f.name}={value!r}")
    return f"{init.name}({', '.join(shown)})"


def _natural(path: str) -> list[tuple[int, int | str]]:
    """Sort key: ``blocks/2`` before ``blocks/10``."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in path.split("/")]


def make_rows(
    plan: Sequence[Any], params: Mapping[str, jax.Array], stds: Sequence[float],
    errors: Sequence[float | None],
) -> list[Row]:  # fmt: skip
    """The report's rows from `jaxinit.flax.plan` rows and the measurements, naturally sorted."""
    rows = [
        Row(p.path, tuple(p.shape), np.dtype(p.dtype).name, describe_sharding(
            params[p.path].sharding), describe_init(p.initializer), p.fan_in, p.fan_out, p.std,
            std, err, math.prod(p.shape))
        for p, std, err in zip(plan, stds, errors, strict=True)
    ]  # fmt: skip
    return sorted(rows, key=lambda r: _natural(r.path))


@dataclasses.dataclass(frozen=True)
class Options:
    """What to report: the options of ``jaxinit report``."""

    model: str = REFERENCE
    scheme: str = DEFAULT_SCHEME
    devices: int | None = None
    seed: int = 0
    compare: bool = True
    signal: bool = False


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything ``jaxinit report`` prints, writes as JSON and plots."""

    model: str
    scheme: str
    summary: str
    bitwise: bool
    platform: str
    devices: int
    mesh: dict[str, int]
    seed: int
    fingerprint: str
    timings: dict[str, float | None]
    rows: list[Row]
    activation_stds: list[float] | None

    def total(self) -> dict[str, int]:
        """Parameter count, arrays, bytes, and how many measured stds are on target."""
        checked = [r.on_target for r in self.rows if r.on_target is not None]
        nbytes = sum(r.size * np.dtype(r.dtype).itemsize for r in self.rows)
        return {
            "parameters": sum(r.size for r in self.rows), "arrays": len(self.rows),
            "bytes": nbytes, "std_checked": len(checked), "std_on_target": sum(checked),
        }  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """The JSON document of ``--json``."""
        rows = [{**dataclasses.asdict(r), "shape": list(r.shape)} for r in self.rows]
        return {
            "model": self.model, "scheme": self.scheme, "platform": self.platform,
            "devices": self.devices, "mesh": self.mesh, "seed": self.seed,
            "fingerprint": self.fingerprint, "fingerprint_bitwise": self.bitwise,
            "timings": self.timings, "total": self.total(), "rows": rows,
            "activation_stds": self.activation_stds,
        }  # fmt: skip


def _no_stage(what: str) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


def run(options: Options, stage: Stage = _no_stage, configured: bool = True) -> Report:
    """Builds, initializes, times and measures the model of `options` (see the module doc).

    Args:
      options: what to report.
      stage: progress hook, entered around each long step.
      configured: whether `configure_devices` took effect (for the device-count error).

    Raises:
      ReportError: for a bad option or a model the scheme does not cover.
    """
    import jaxinit.flax

    t0 = time.perf_counter()
    scheme = get_scheme(options.scheme, options.model)
    factory = load_factory(options.model)
    mesh = make_mesh(select_devices(options.devices, configured))
    with stage("building the model abstractly"):
        abstract = build_abstract(factory, options.model, mesh, options.seed)
        base = None
        if scheme.needs_base:
            base = build_abstract(load_factory(REFERENCE_BASE), REFERENCE_BASE, mesh, 0)
        try:
            rules = scheme.rules(abstract, base)
            plan = jaxinit.flax.plan(abstract, rules, mesh=mesh)
        except ValueError as e:
            raise ReportError(f"`--scheme {options.scheme}` on this model: {e}") from e
        uncovered = [p.path for p in plan if p.initializer is None]
        if uncovered:
            raise ReportError(
                f"`--scheme {options.scheme}` has no rule for {len(uncovered)} parameter(s) of "
                f"`--model {options.model}`: {', '.join(uncovered)}."
            )
    if options.compare:  # one-time costs must land on neither contender
        with stage("warming up"):
            warm_up(mesh)
    with stage(f"initializing with jaxinit ({options.scheme})"):
        model, t_jaxinit = init_jaxinit(factory, rules, mesh, options.seed)
    t_flax = None
    if options.compare:
        with stage("initializing with Flax's own init (timing only)"):
            t_flax = time_flax(factory, mesh, options.seed)
    with stage("measuring std and orthogonality on device"):
        t = time.perf_counter()
        params = parameters(model)
        arrays = [params[p.path] for p in plan]
        stds, errors = measure(arrays, [matrix_view(p.initializer, p.shape) for p in plan])
        t_measure = time.perf_counter() - t
    with stage("fingerprinting"):
        t = time.perf_counter()
        digest = fingerprint(params)
        t_fingerprint = time.perf_counter() - t
    acts = None
    if options.signal:
        with stage("signal propagation on a random batch"):
            acts = activation_stds(model, mesh, options.seed)
    timings = {
        "jaxinit_s": t_jaxinit, "flax_s": t_flax,
        "ratio": t_jaxinit / t_flax if t_flax else None,
        "measure_s": t_measure, "fingerprint_s": t_fingerprint,
        "total_s": time.perf_counter() - t0,
    }  # fmt: skip
    return Report(
        model=describe_model(options.model, abstract), scheme=options.scheme,
        summary=scheme.summary, bitwise=scheme.bitwise, platform=mesh.devices.flat[0].platform,
        devices=mesh.devices.size, mesh=dict(mesh.shape), seed=options.seed,
        fingerprint=digest, timings=timings,
        rows=make_rows(plan, params, stds, errors), activation_stds=acts,
    )  # fmt: skip


# -- the plot --------------------------------------------------------------------------------------
def _group(path: str) -> str:
    """The layer a parameter belongs to: up to its block index (``blocks/3``), else its first
    component (``embed``)."""
    parts = path.split("/")
    cut = next((i for i, p in enumerate(parts) if p.isdigit()), 0)
    return "/".join(parts[: cut + 1])


def _kind(path: str) -> str:
    """The parameter's module within its layer (``q``, ``down``, ``embed``...)."""
    parts = path.split("/")
    return parts[-2] if len(parts) >= 2 else parts[-1]


def _plot_stds(ax: Any, rows: Sequence[Row]) -> None:
    """Per-parameter target (black bar) and measured (coloured dot) std, log scale, by layer."""
    shown = [r for r in rows if r.measured_std > 0 or (r.target_std or 0) > 0]
    kinds = list(dict.fromkeys(_kind(r.path) for r in shown))
    colors = {k: f"C{i % 10}" for i, k in enumerate(kinds)}
    for kind in kinds:
        xs = [i for i, r in enumerate(shown) if _kind(r.path) == kind]
        ax.scatter(xs, [shown[i].measured_std for i in xs], s=22, color=colors[kind], label=kind,
                   zorder=3)  # fmt: skip
    targets = [(i, r.target_std) for i, r in enumerate(shown) if r.target_std]
    ax.scatter([i for i, _ in targets], [t for _, t in targets], marker="_", s=160, color="k",
               linewidths=1.5, label="target (plan)", zorder=2)  # fmt: skip
    groups = [_group(r.path) for r in shown]
    starts = [i for i, g in enumerate(groups) if i == 0 or g != groups[i - 1]]
    for i in starts[1:]:
        ax.axvline(i - 0.5, color="0.85", linewidth=0.8, zorder=1)
    ends = [*starts[1:], len(shown)]
    ax.set_xticks([(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)])
    ax.set_xticklabels([groups[i] for i in starts], rotation=45, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("std of the parameter's values")
    constant = len(rows) - len(shown)
    note = f" ({constant} constant parameters, e.g. norm scales = 1, not shown)" if constant else ""
    ok = sum(bool(r.on_target) for r in rows)
    checked = sum(r.on_target is not None for r in rows)
    ax.set_title(
        f"Per-parameter std: target (bar) vs measured (dot); {ok}/{checked} within {STD_Z:g} "
        f"standard errors{note}",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=2, loc="best")
    ax.grid(axis="y", which="both", color="0.93")


def _plot_signal(ax: Any, stds: Sequence[float] | None) -> None:
    """Residual-stream std after the embedding and each block."""
    if not stds:
        ax.text(0.5, 0.5, "signal propagation not measured:\nthe model has no\n"
                "`activation_stds(key)` method", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
        ax.set_axis_off()
        return
    depth_ = range(len(stds))
    ax.plot(depth_, stds, marker="o", color="C3")
    for x in (0, len(stds) - 1):
        ax.annotate(f"{stds[x]:.3g}", (x, stds[x]), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8)  # fmt: skip
    ax.set_xticks(list(depth_))
    ax.set_xticklabels(["embed", *map(str, depth_[1:])], fontsize=8)
    ax.set_xlabel("after block")
    ax.set_ylabel("std of the residual stream")
    ax.set_ylim(0, max(stds) * 1.15)
    ax.set_title("Signal propagation on a random token batch", fontsize=10)
    ax.grid(color="0.93")


def plot(report: Report, path: str) -> None:
    """Writes the report's figure to `path` (PNG): per-parameter target vs measured std, and
    the signal propagation (residual-stream std through depth). Needs matplotlib."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    fig = Figure(figsize=(15, 6), layout="constrained")
    ax_std, ax_signal = fig.subplots(1, 2, width_ratios=[2.3, 1])
    _plot_stds(ax_std, report.rows)
    _plot_signal(ax_signal, report.activation_stds)
    mesh = " x ".join(f"{k}={v}" for k, v in report.mesh.items())
    fig.suptitle(
        f"jaxinit report: {report.model}\nscheme '{report.scheme}': {report.summary}; "
        f"{report.devices} {report.platform} device(s), mesh {mesh}, seed {report.seed}, "
        f"fingerprint {report.fingerprint[:16]}",
        fontsize=11,
    )
    fig.savefig(path, dpi=110)
