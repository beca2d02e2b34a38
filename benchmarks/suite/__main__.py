"""Run the benchmark areas and compose ``benchmarks/RESULTS.md``.

    .venv/bin/python -m benchmarks.suite [--quick] [--areas gateway drift ...] [--compose-only]

Full mode runs each area's ``benchmarks/<area>/run.py --json TMP`` one after another (they
all want the 2 cores), installs each checked document as ``benchmarks/<area>/results.json``
and rewrites ``benchmarks/RESULTS.md``. ``--quick`` runs every area's smoke mode into a
temporary folder, checks each document's shape and leaves recorded results alone; the
areas that need vLLM (serving, swap) then share one engine the suite starts, so the quick
suite pays for one vLLM start. ``--compose-only`` rebuilds RESULTS.md from the recorded
documents. With ``--areas``, only the named areas' rows and sections change: the others stay
as the page shows them (an area the page lacks comes from its recorded document). Exits 1
when any area failed (missing script, non-zero exit, time-out, malformed document); a missed
target is a result, not a failure.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks.suite.cli import recorded_path
from benchmarks.suite.compose import AreaOutcome, KeptArea, compose, kept_areas, summary_table
from benchmarks.suite.contract import AREAS, check_document, now_iso

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
#: Areas that accept ``--engine-url`` (a running vLLM) instead of starting their own.
ENGINE_AREAS = frozenset({"serving", "swap"})


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_document(area: str, path: Path, *, quick: bool | None) -> AreaOutcome:
    """The outcome of an area whose document should be at ``path``."""
    if not path.exists():
        return AreaOutcome(area, error=f"no result document at {path}")
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        return AreaOutcome(area, error=f"{path} is not JSON: {exc}")
    errors = check_document(doc, area=area, quick=quick)
    if errors:
        return AreaOutcome(area, error=f"{path.name} breaks the contract: " + "; ".join(errors))
    return AreaOutcome(area, doc=doc)


def _stop(proc: subprocess.Popen[str], grace_s: float = 30.0) -> None:
    """SIGINT, then a kill: a background job may have SIGINT ignored (``cmd &``)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_area(
    area: str,
    out: Path,
    *,
    quick: bool,
    timeout_s: float,
    engine_url: str | None = None,
    root: Path = ROOT,
) -> AreaOutcome:
    """Run ``root/benchmarks/<area>/run.py`` as a module, forwarding its output prefixed."""
    if not (root / "benchmarks" / area / "run.py").exists():
        return AreaOutcome(area, error=f"benchmarks/{area}/run.py is missing")
    argv = [sys.executable, "-m", f"benchmarks.{area}.run", "--json", str(out)]
    if quick:
        argv.append("--quick")
    if engine_url and area in ENGINE_AREAS:
        argv += ["--engine-url", engine_url]
    log(f"{area}: {shlex.join(argv[1:])}")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    # SIGINT first: the script's context managers then stop the vLLM they started
    # (its own process group, which a kill of the script would leave behind)
    timer = threading.Timer(timeout_s, _stop, args=(proc,))
    timer.start()
    assert proc.stdout is not None
    tail: list[str] = []
    try:
        for line in proc.stdout:
            print(f"  {area}| {line}", end="", flush=True)
            tail = [*tail[-19:], line.rstrip()]
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    finally:
        timer.cancel()
    if time.monotonic() - t0 >= timeout_s:
        return AreaOutcome(area, error=f"timed out after {timeout_s:.0f} s", wall_s=timeout_s)
    wall = time.monotonic() - t0
    if rc != 0:
        last = " / ".join(line for line in tail[-3:] if line)
        return AreaOutcome(area, error=f"exited {rc}: {last}", wall_s=wall)
    outcome = read_document(area, out, quick=quick)
    log(f"{area}: {'ok' if outcome.ok else 'FAILED'} in {wall:.0f} s")
    return AreaOutcome(area, doc=outcome.doc, error=outcome.error, wall_s=wall)


@contextmanager
def shared_engine(needed: bool, log_dir: Path) -> Iterator[str | None]:
    """One vLLM for the quick runs of the areas that need one (None when none does)."""
    if not needed:
        yield None
        return
    from benchmarks.suite.engine import engine_settings
    from driftgate.engine import EngineProcess
    from driftgate.process import ProcessStartError

    log("starting one vLLM for the quick runs (about a minute)")
    settings = engine_settings()
    with ExitStack() as stack:
        try:
            engine = stack.enter_context(EngineProcess(settings, log_path=log_dir / "engine.log"))
        except ProcessStartError as exc:
            # the areas then start their own, and report their own failure
            log(f"the shared vLLM did not start: {str(exc)[-300:]}")
            yield None
            return
        log(f"vLLM ready at {engine.base_url}")
        yield engine.base_url


def run_suite(areas: Sequence[str], *, quick: bool, timeout_s: float) -> list[AreaOutcome]:
    outcomes: list[AreaOutcome] = []
    with tempfile.TemporaryDirectory(prefix="driftgate-bench-") as tmp:
        tmpdir = Path(tmp)
        needs_engine = quick and any(a in ENGINE_AREAS for a in areas)
        with shared_engine(needs_engine, tmpdir) as engine_url:
            for area in areas:
                out = tmpdir / f"{area}.json"
                o = run_area(area, out, quick=quick, timeout_s=timeout_s, engine_url=engine_url)
                if o.ok and not quick:
                    # only a checked full-mode document replaces the recorded one
                    shutil.copyfile(out, recorded_path(area))
                outcomes.append(o)
    return outcomes


def write_results(outcomes: Sequence[AreaOutcome | KeptArea], command: str) -> Path:
    path = BENCH / "RESULTS.md"
    path.write_text(compose(outcomes, generated=now_iso(), command=command))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run; RESULTS.md is not rewritten")
    ap.add_argument("--areas", nargs="+", choices=AREAS, default=list(AREAS))
    ap.add_argument(
        "--compose-only", action="store_true", help="rebuild RESULTS.md from results.json files"
    )
    ap.add_argument("--timeout-s", type=float, help="per area (default 300 quick, 3600 full)")
    args = ap.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.suite", *given])
    t0 = time.monotonic()
    if args.compose_only:
        outcomes = [read_document(a, recorded_path(a), quick=False) for a in args.areas]
    else:
        timeout_s = args.timeout_s or (300.0 if args.quick else 3600.0)
        outcomes = run_suite(args.areas, quick=args.quick, timeout_s=timeout_s)
    print(summary_table(outcomes), flush=True)
    if not args.quick:
        # areas not named keep their text on the page, else their recorded documents
        ran: dict[str, AreaOutcome | KeptArea] = {o.area: o for o in outcomes}
        path = BENCH / "RESULTS.md"
        if path.exists():
            others = [a for a in AREAS if a not in ran]
            ran.update(kept_areas(path.read_text(), others))
        page = [ran.get(a) or read_document(a, recorded_path(a), quick=False) for a in AREAS]
        log(f"wrote {write_results(page, command).relative_to(ROOT)}")
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        log(f"FAILED {o.area}: {o.error}")
    log(f"{len(outcomes) - len(failed)}/{len(outcomes)} areas ok in {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
