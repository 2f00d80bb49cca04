"""inference_ledger.spark.start_in_background: a fresh driver starts its JVM on another thread
while it does other work; `get_spark` hands that session to the main thread and installs there
the Ctrl-C handler pyspark installs only when the main thread creates the context."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.reliability_support import subprocess_env

pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent(
    """
    import json, signal, time
    from inference_ledger import spark as S

    S.start_in_background()
    # The main thread does not ask for the session: it is created anyway.
    deadline = time.monotonic() + 300
    while S._SESSION is None and time.monotonic() < deadline:
        time.sleep(0.1)
    started = S._SESSION
    session = S.get_spark()
    out = {
        "started_without_asking": started is not None,
        "same_session": session is started,
        "handler": getattr(signal.getsignal(signal.SIGINT), "__name__", None),
    }
    print("RESULT " + json.dumps(out))
    """
)


def test_background_start_hands_the_session_to_the_main_thread(tmp_path):
    env = subprocess_env(LEDGER_HOME=str(tmp_path / "home"))
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    assert json.loads(lines[-1][len("RESULT ") :]) == {
        "started_without_asking": True,
        "same_session": True,
        "handler": "on_interrupt",
    }
