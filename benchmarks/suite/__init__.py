"""The benchmark suite: runs every area's ``run.py`` and composes ``benchmarks/RESULTS.md``.

    .venv/bin/python -m benchmarks.suite             # every area, full mode; rewrites RESULTS.md
    .venv/bin/python -m benchmarks.suite --quick     # smoke run of every area (CI)

See :mod:`benchmarks.suite.contract` for the result document every area writes and
:mod:`benchmarks.suite.cli` for the flags and plumbing every area's ``run.py`` shares.
"""
