"""Serving the app: the WSGI server with bounds on every connection, and a clean stop.

Under eventlet (the default) the server is eventlet's own, set up here rather than through
`SocketIO.run`, for what that one leaves open:
- `debug=False`: eventlet otherwise writes a failing request's traceback into its socket;
- `idle_timeout_s` on every socket but websockets: a connection that sends nothing is closed
  (a websocket is Socket.IO's: its ping/pong drops a silent client);
- `max_connections`: past it a new connection gets `503` and is closed at once (counted in
  /metrics), where eventlet's pool would stop accepting and every newcomer would hang.

SIGTERM and SIGINT drain: /health says 503 `draining` and new frames get `draining`, the batch
in hand is finished and delivered, the plate log is written and closed, then the process exits 0.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
from time import monotonic

from realtime.app import PlateServer

log = logging.getLogger("plates")
DRAIN_S = 5.0  # the most a stop waits for the batch in hand and its results
_FULL_BODY = b'{"error": {"code": "too_many_connections", "message": "try again later"}}'
FULL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_FULL_BODY), _FULL_BODY))
POOL_SPARE = 16  # eventlet's pool is this much larger than the cap, so the cap refuses before it blocks


def serve(plate_server: PlateServer) -> None:
    """Listen on server.host:port until SIGTERM/SIGINT, then drain and exit."""
    server = plate_server.runtime.config.server
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: plate_server.socketio.start_background_task(stop, plate_server))
    if server.async_mode == "threading":
        plate_server.socketio.run(plate_server.app, host=server.host, port=server.port, log_output=False,
                                  allow_unsafe_werkzeug=True)
        return
    import eventlet
    import eventlet.wsgi

    family, _, _, _, address = socket.getaddrinfo(server.host, server.port, type=socket.SOCK_STREAM)[0]
    listener = eventlet.listen(address, family)
    eventlet.wsgi.server(listener, websockets_untimed(plate_server.app), log_output=False, debug=False,
                         socket_timeout=server.idle_timeout_s,
                         custom_pool=CappedPool(server.max_connections, plate_server.runtime.stats))


def websockets_untimed(wsgi_app):
    """A websocket needs no socket timeout (Socket.IO's own ping drops a silent client in 45 s), and one
    costs a hub timer on every read: six cameras' p95 rose by ~30 ms. The timeout stays on the rest."""
    def app(environ: dict, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket" and "eventlet.input" in environ:
            environ["eventlet.input"].get_socket().settimeout(None)
        return wsgi_app(environ, start_response)
    return app


class CappedPool:
    """The pool eventlet.wsgi.server runs each connection in (it calls spawn and waitall), refusing past
    `cap` connections: the refused one gets FULL, and eventlet's clean-up closes it."""

    def __init__(self, cap: int, stats):
        import eventlet

        self._pool, self._cap, self._stats = eventlet.GreenPool(cap + POOL_SPARE), cap, stats

    def spawn(self, function, connection, *args):
        if self._pool.running() < self._cap:
            return self._pool.spawn(function, connection, *args)
        self._stats.m_refused_connections.inc()
        try:
            connection[1].settimeout(0.5)
            connection[1].sendall(FULL)
        except OSError:
            pass
        return _Closed()

    def waitall(self) -> None:
        self._pool.waitall()


class _Closed:
    """Stands for a refused connection's green thread: eventlet links its clean-up to it, run at once."""

    def link(self, func, *args) -> None:
        func(self, *args)


def stop(plate_server: PlateServer) -> None:
    """Drain (see the module's docstring) and exit 0; a second signal meanwhile changes nothing."""
    runtime = plate_server.runtime
    if runtime.draining:
        return
    runtime.draining = True
    log.info("stopping: finishing the frames in hand")
    deadline = monotonic() + DRAIN_S
    while monotonic() < deadline and not runtime.worker.idle():
        plate_server.socketio.sleep(0.05)
    plate_server.socketio.sleep(0.2)  # the results pump delivers what the worker handed over last
    runtime.plate_log.close(max(0.5, deadline - monotonic()))
    log.info("stopped: plate log written and closed (%d writes since start)", runtime.plate_log.written)
    logging.shutdown()
    os._exit(0)  # the open sockets and the model threads end with the process
