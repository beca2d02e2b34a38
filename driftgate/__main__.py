"""``python -m driftgate``: the same as the ``driftgate`` command."""

from driftgate.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
