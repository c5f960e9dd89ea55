"""The realtime side: Socket.IO and HTTP, per-camera frame slots, the inference worker, stats."""
