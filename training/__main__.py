"""``python -m training`` = the ``rudra`` command (``training.cli``)."""

from training.cli import main

raise SystemExit(main())
