"""Helpers for tools that start `visionpool serve` themselves."""

import socket
import sys
import time


def wait_for_socket(path, server, limit=60):
    """Returns once the server accepts connections on `path` (bench then waits until it is
    ready); exits if it stops or does not listen within `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(path)
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"visionpool serve did not start listening on {path}")
