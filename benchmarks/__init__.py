"""Benchmarks of jaxinit against jax.nn.initializers and torch.nn.init (`python -m benchmarks`)."""
