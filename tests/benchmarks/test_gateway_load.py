"""Parsing the load tools' output in the gateway benchmark (``benchmarks.gateway.load``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.gateway.load import parse_hey, parse_wrk

WRK = """\
Running 8s test @ http://127.0.0.1:18773/v1/chat/completions
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.43ms    1.20ms  30.11ms   90.00%
    Req/Sec     3.40k   100.00     3.60k    80.00%
  Latency Distribution
     50%    9.30ms
     75%    9.80ms
     90%   10.50ms
     99%    1.42s
  27200 requests in 8.00s, 10.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   3400.00
Transfer/sec:      1.25MB
"""

HEY = """\
Summary:
  Total:\t8.0012 secs
  Slowest:\t0.0210 secs
  Fastest:\t0.0020 secs
  Average:\t0.0040 secs
  Requests/sec:\t49.9925

Latency distribution:
  10%% in 0.0030 secs
  50%% in 0.0040 secs
  90%% in 0.0060 secs
%s
Status code distribution:
  [200]\t398 responses
  [502]\t2 responses

Error distribution:
  [3]\tPost "http://127.0.0.1:18773/v1/chat/completions": connection refused
"""


def test_wrk_output_gives_counts_latencies_and_every_kind_of_error() -> None:
    got = parse_wrk(WRK)
    assert got == {
        "requests": 27200,
        "rps": 3400.0,
        "p50_ms": pytest.approx(9.3),
        "p99_ms": pytest.approx(1420.0),
        "errors": 4 + 3,  # non-2xx responses plus socket errors
    }


def test_hey_output_counts_bad_statuses_and_transport_errors() -> None:
    got = parse_hey(HEY % "  99% in 0.0150 secs\n")
    assert got == {
        "requests": 398 + 2 + 3,
        "rps": pytest.approx(49.9925),
        "p50_ms": pytest.approx(4.0),
        "p99_ms": pytest.approx(15.0),
        "errors": 2 + 3,
    }


def test_hey_without_a_99_percent_line_falls_back_to_the_slowest() -> None:
    assert parse_hey(HEY % "")["p99_ms"] == pytest.approx(21.0)


@pytest.mark.parametrize("parse", [parse_wrk, parse_hey])
def test_unexpected_output_is_an_error(parse: Callable[[str], dict[str, Any]]) -> None:
    with pytest.raises(RuntimeError, match="unexpected"):
        parse("command not found")
