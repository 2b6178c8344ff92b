"""``python -m semsearch``: the same command line as the ``semsearch`` script."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
