"""Which process serves a camera, when several share a message queue: a lease per camera in Redis.

A camera's frames must be tracked, read and logged by one process: two would each announce its
vehicles. The first process that gets a camera's frames takes its lease (a Redis key with an
expiry, naming the process), renews it while frames come (every lease_s / 3), and gives it up when
no frame came for lease_s or its sender left. A frame that reaches another process is refused
with `wrong_process`, naming the owner, and not processed. A process that dies stops renewing:
its cameras' leases expire within lease_s, and the next process their frames reach takes them.

The event loop never waits on Redis for a camera it knows: the cameras this process owns, and
the owners of those it does not (for RECHECK_S), are kept here; only a camera's first frame,
and one frame in RECHECK_S of a camera another process owns, ask Redis (within its socket
timeout). With Redis unreachable a process keeps its cameras and takes new ones as its own
(counted, logged once in a while): cameras stay served, and the load balancer's routing by
camera keeps each on one process anyway.
"""
from __future__ import annotations

import logging
from time import monotonic

from realtime.message_queue import LOG_S, redis_client
from realtime.throttle import Throttle

log = logging.getLogger("plates")
KEY = "plates:camera:{}"  # a camera's lease
RECHECK_S = 1.0  # how long another process's lease is believed before Redis is asked again

# the key's owner after this process asked for it: taken (or renewed) when free or its own, else untouched
CLAIM = """
local owner = redis.call('GET', KEYS[1])
if not owner or owner == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return ARGV[1]
end
return owner
"""
RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class CameraLeases:
    def __init__(self, url: str, me: str, lease_s: float):
        self.me, self.lease_s = me, lease_s
        self._redis = redis_client(url)
        self._claim, self._release = self._redis.register_script(CLAIM), self._redis.register_script(RELEASE)
        self._owned: dict[str, float] = {}  # camera -> its last frame here
        self._others: dict[str, tuple[str, float]] = {}  # camera -> (owner, when Redis said so)
        self._leaving: set[str] = set()  # cameras whose sender left: released by the next renewal
        self.unchecked = 0  # cameras taken without Redis's word (it did not answer)
        self.lost = 0  # leases found taken by another process at renewal
        self._log_throttle = Throttle(LOG_S)

    def owner(self, camera_id: str) -> str | None:
        """None when this process serves the camera (taking its lease if free), else the process that does."""
        now = monotonic()
        if camera_id in self._owned:
            self._owned[camera_id] = now
            self._leaving.discard(camera_id)
            return None
        known = self._others.get(camera_id)
        if known is not None and now - known[1] < RECHECK_S:
            return known[0]
        try:
            owner = self._take(camera_id)
        except Exception as exc:
            self.unchecked += 1
            self._trouble(f"taking camera {camera_id!r} unchecked", exc)
            owner = self.me
        if owner == self.me:
            self._others.pop(camera_id, None)
            self._owned[camera_id] = now
            return None
        self._others[camera_id] = (owner, now)
        return owner

    def leave(self, camera_id: str) -> None:
        """The camera's sender left: its lease goes at the next renewal (the loop does not wait on Redis)."""
        if camera_id in self._owned:
            self._leaving.add(camera_id)

    def owned(self) -> list[str]:
        return sorted(self._owned)

    def renew_forever(self, sleep) -> None:
        """A background task: renews the leases of cameras with recent frames, gives up the others."""
        while True:
            sleep(self.lease_s / 3)
            self.renew()

    def renew(self) -> None:
        now = monotonic()
        self._others = {c: o for c, o in self._others.items() if now - o[1] < RECHECK_S}
        for camera_id, last in list(self._owned.items()):
            key, going = KEY.format(camera_id), camera_id in self._leaving or now - last > self.lease_s
            try:
                if going:
                    self._release(keys=[key], args=[self.me])
                elif self._take(camera_id) != self.me:  # expired while Redis was away, and taken
                    going = True
                    self.lost += 1
            except Exception as exc:  # kept; renewed when Redis answers again
                self._trouble("renewing leases", exc)
                continue
            if going:
                self._owned.pop(camera_id, None)
                self._leaving.discard(camera_id)

    def _take(self, camera_id: str) -> str:
        """The camera's owner, after taking (or renewing) its lease where it is free or this process's."""
        ttl_ms = max(1, round(self.lease_s * 1000))
        return self._claim(keys=[KEY.format(camera_id)], args=[self.me, ttl_ms]).decode()

    def _trouble(self, what: str, exc: Exception) -> None:
        if self._log_throttle.due():
            log.error("camera leases: %s: %s: %s (logged once in %.0f s)",
                      what, type(exc).__name__, exc, LOG_S)
