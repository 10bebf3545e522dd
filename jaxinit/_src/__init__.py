"""Private implementation of jaxinit. The public API is ``jaxinit/__init__.py``."""
