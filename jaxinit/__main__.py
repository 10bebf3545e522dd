"""``python -m jaxinit``: the command-line interface."""

from jaxinit._src.tools.cli import main

raise SystemExit(main())
