"""Run the plate server: python server.py [--host H] [--port P] [--config FILE] [--async-mode M]

Loads config.yaml (or --config / $CONFIG), starts listening at once (GET /health answers
503 until the models are loaded, then 200) and serves the Socket.IO protocol of DESIGN.md.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from realtime.config import AppConfig
    from realtime.slots import FrameSlots


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="config file (default: $CONFIG or config.yaml)")
    ap.add_argument("--host", help="address to listen on (overrides $HOST and the config)")
    ap.add_argument("--port", type=int, help="port (overrides $PORT and the config)")
    ap.add_argument(
        "--async-mode", choices=["eventlet", "threading"], help="overrides $ASYNC_MODE and the config"
    )
    return ap.parse_args(argv)


def prepare_process(config: AppConfig) -> None:
    """Before anything imports torch or EasyOCR: their thread count, and eventlet's monkey patching."""
    # one core for inference, the rest for the event loop
    os.environ.setdefault("OMP_NUM_THREADS", str(config.vision.detector.torch_threads))
    if config.server.async_mode == "eventlet":
        import warnings

        # the client asked for eventlet
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

        eventlet.monkey_patch()
        from realtime.eventlet_patch import speed_up_websocket_unmasking

        speed_up_websocket_unmasking()


def main(argv: list[str] | None = None, slots: type[FrameSlots] | None = None) -> int:
    """Run until stopped; `slots` replaces the frame slots' class (the benchmark's naive reference)."""
    args = parse_args(argv)
    from detector.config import ConfigError
    from realtime.config import load_config

    try:
        config = load_config(
            args.config, overrides={"host": args.host, "port": args.port, "async_mode": args.async_mode}
        )
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    prepare_process(config)
    logging.basicConfig(
        level=config.server.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from realtime.threads import real_logging_locks

    real_logging_locks()
    log = logging.getLogger("plates")

    from detector import ModelLoadError, PersistentDetector
    from realtime.app import create_app
    from realtime.plate_log import PlateLogError

    try:
        PersistentDetector.check_files(config.vision)
        plate_server = create_app(config, slots=slots() if slots else None)
    except (ModelLoadError, PlateLogError) as exc:
        log.critical("%s", exc)
        return 2
    plate_server.start()
    log.info(
        "serving on http://%s:%d (%s mode, config %s); models loading",
        config.server.host,
        config.server.port,
        config.server.async_mode,
        config.path,
    )
    from realtime.serve import serve

    serve(plate_server)  # until SIGTERM or SIGINT, which exit the process themselves
    return 0


if __name__ == "__main__":
    sys.exit(main())
