"""Bounds that API inputs share with the state store's columns.

An integer that reaches an ``INTEGER`` column must fit it: PostgreSQL's holds 32 bits
(SQLite's 64), and a larger value fails at the insert, as a 500. The models that take
such a number bound it here, so the caller gets a 422 instead.
"""

from __future__ import annotations

#: The largest value of a PostgreSQL ``INTEGER`` column.
INT_COLUMN_MAX = 2**31 - 1
