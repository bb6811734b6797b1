"""``python -m restorelab`` is the ``restorelab`` command."""

from restorelab.cli import main

raise SystemExit(main())
