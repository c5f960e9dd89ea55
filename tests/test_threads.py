"""Real threads beside eventlet's loop: logging from them never hangs the server."""
import subprocess
import sys

from tests.conftest import ROOT

# the server's set-up (server.py: monkey patching, then logging, then real_logging_locks) with a stream whose
# writes yield to other green threads, as a socket's or a pipe's do: two real threads (the worker, the careful
# lane) and the loop log at once. With eventlet's green locks the first wait across threads never wakes
# ("greenlet.error: Cannot switch to a different thread") and the process hangs
SCRIPT = """
import eventlet
eventlet.monkey_patch()
import logging
from realtime.threads import real_logging_locks, real_threading

class Yielding:
    def write(self, text):
        eventlet.sleep(0)
    def flush(self):
        pass

logging.basicConfig(level=logging.DEBUG, stream=Yielding())
real_logging_locks()
log = logging.getLogger("plates")

def lines():
    for i in range(3000):
        log.debug("line %d", i)

threads = [real_threading().Thread(target=lines) for _ in range(2)]
for thread in threads:
    thread.start()
for i in range(3000):
    log.info("loop %d", i)
    eventlet.sleep(0)
for thread in threads:
    thread.join()
print("done")
"""


def test_real_threads_and_the_loop_log_at_once_under_eventlet_without_hanging():
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-2000:]
    assert "Cannot switch" not in done.stderr
