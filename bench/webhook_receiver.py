"""A webhook receiver on loopback (the tests' and the benchmark's barrier controller): it records each POST
and answers `status` after `delay` seconds (a receiver that fails, or hangs)."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, status: int = 200, delay: float = 0.0):
        self.posts: list[tuple[dict, bytes]] = []  # (headers, body) of each POST, in arrival order
        self.arrived: list[float] = []  # when each came (time.time())
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived.append(time.time())
                receiver.posts.append((dict(self.headers), body))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/barrier"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
