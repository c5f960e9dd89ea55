"""The results pump: a background task on the loop side that emits what the inference worker hands back.

The worker's OS thread never emits (eventlet's primitives belong to the loop): it wakes the pump
through the LoopWaker, and the pump sends each frame's `detection_result` to its sender and its
camera's viewers, turns track reports into plate events (logged, announced when new or changed, and
then decided by the gate's rules: realtime/gate.py), and hands POST /detect its answer.
"""
from __future__ import annotations

import logging
import os

from flask_socketio import SocketIO

from realtime.payloads import result_payload
from realtime.runtime import Runtime
from realtime.sockets import refuse, room
from realtime.threads import LoopWaker
from realtime.worker import FrameResult

log = logging.getLogger("plates")


class ResultsPump:
    def __init__(self, socketio: SocketIO, runtime: Runtime, waker: LoopWaker):
        self.socketio, self.runtime, self.waker = socketio, runtime, waker

    def run(self) -> None:
        worker, announced = self.runtime.worker, False
        while True:
            self.waker.wait(0.5)
            if worker.load_error:
                log.critical("could not load the models: %s", worker.load_error)
                os._exit(3)  # a server without models is no server: let the supervisor see it
            if worker.ready and not announced:
                announced = True
                log.info("models loaded in %.1f s: %s", worker.detector.load_seconds, worker.detector.models)
            results, failures = worker.drain()
            for failure in failures:
                log.error("inference failed on a frame:\n%s", failure)
            for result in results:
                try:
                    self.deliver(result)
                except Exception:  # one undeliverable result must not stop the pump
                    log.exception("could not deliver a result")
            self.runtime.stats.m_waiting.set(self.runtime.slots.waiting())

    def deliver(self, result: FrameResult) -> None:
        frame, runtime = result.frame, self.runtime
        if frame.reply is not None:  # POST /detect waits for this one
            frame.reply["result"] = result
            frame.reply["event"].set()
            return
        camera_id = frame.payload.camera_id
        if result.error is not None:
            refuse(self.socketio, runtime, frame.sid, result.error, camera_id, frame.payload.frame_id)
            return
        # a camera whose sender left while its frame was processed is closed: counting the frame
        # would bring its figures back to /health and /metrics for good
        if camera_id in runtime.streams:
            cam = runtime.stats.processed(
                camera_id, len(result.reads), result.timing_ms or {}, result.ocr_calls, result.still
            )
            self._send("detection_result", result_payload(result, cam.summary()), frame.sid, camera_id)
        for report in result.reports:
            event, announce = runtime.events.observe(report)
            runtime.plate_log.record(event)
            if announce:
                self._send("plate_event", event.to_dict(), frame.sid, camera_id)
                decision = runtime.gate.decide(event)
                if decision is not None:
                    self._send("gate_decision", decision, frame.sid, camera_id)

    def _send(self, name: str, payload: dict, sender: str, camera_id: str) -> None:
        """To the camera's sender and to its viewers (a sender that also watches gets it once). The annotated
        frame only to the sender that asked for it: viewers draw the detections, and with a message queue
        every process would receive and decode it."""
        self.socketio.emit(name, payload, to=sender)
        viewers = {k: v for k, v in payload.items() if k != "annotated_frame"}
        self.socketio.emit(name, viewers, to=room(camera_id), skip_sid=sender)
