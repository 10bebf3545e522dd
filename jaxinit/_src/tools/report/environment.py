"""What ``jaxinit report`` runs on: its option errors, the devices and mesh, and
the model, loaded from ``module:factory`` and built abstractly under the mesh.

The schemes are in schemes.py, the measurements in measure.py, the run and its
rows in report.py, the figure in plot.py.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax

#: The ``--model`` specs of the embedded reference model (reference_model.py) and of its muP
#: base width.
REFERENCE_MODEL = "jaxinit._src.tools.report.reference_model:reference"
REFERENCE_MODEL_BASE = "jaxinit._src.tools.report.reference_model:reference_base"
#: Simulated CPU devices when ``--devices`` is not given.
DEFAULT_CPU_DEVICES = 8
#: The axes of the report's mesh, which a model's partition metadata may name.
MESH_AXES = ("data", "model")
#: The most devices ``--devices`` may ask for: XLA:CPU simulates each device with its own
#: buffers and threads, and far beyond this a report would run for hours (99999 never ends).
MAX_DEVICES = 1024


class ReportError(ValueError):
    """A bad option of ``jaxinit report`` (the message names it) or a model it cannot handle."""


# -- devices and mesh ------------------------------------------------------------------------------
def check_device_count(value: Any) -> int:
    """`value` as a device count (an int in 1..`MAX_DEVICES`), else `ReportError` naming
    ``--devices``."""
    try:
        n = int(value, 10) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        n = None
    if n is None or not 1 <= n <= MAX_DEVICES or isinstance(value, bool | float):
        raise ReportError(
            f"`--devices` must be a positive integer <= {MAX_DEVICES}; got {value!r}."
        )
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
    except (Exception, SystemExit) as e:  # an import that exits is a bad --model, not an exit
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
    except SystemExit as e:
        raise ReportError(
            f"`--model {spec}` exited (SystemExit({e.code!r})) instead of returning an nnx.Module."
        ) from None
    except Exception as e:
        raise ReportError(
            f"`--model {spec}`: building the model raised {type(e).__name__}: {e}"
        ) from e


def describe_model(spec: str, model: Any) -> str:
    """The reference model with its size, or the ``--model`` spec."""
    cfg = getattr(model, "cfg", None)
    if spec != REFERENCE_MODEL or cfg is None:
        return spec
    return (
        f"reference Llama ({cfg.layers} blocks, d={cfg.dim}, {cfg.heads} heads, SwiGLU "
        f"{cfg.hidden}, vocab {cfg.vocab})"
    )
