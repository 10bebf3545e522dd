"""``python -m jaxinit``: the command-line interface."""

from jaxinit._src.cli import main

raise SystemExit(main())
