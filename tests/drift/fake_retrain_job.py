"""Stand-in for ``python -m retrain`` in trigger tests (the real job trains for minutes).

Appends its arguments as one JSON line to ``$FAKE_RETRAIN_OUT`` and sleeps
``$FAKE_RETRAIN_SLEEP`` seconds, so tests can see that it ran and that a
second trigger is refused while it runs.
"""

import json
import os
import sys
import time

with open(os.environ["FAKE_RETRAIN_OUT"], "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\n")
time.sleep(float(os.environ.get("FAKE_RETRAIN_SLEEP", "0")))
