"""Where the tools find the release build of `visionpool`, shared by the comparison scripts."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def release_binary():
    """The release executable, or exit with a message saying how to build it."""
    folder = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    binary = Path(folder) / "visionpool"
    if not binary.exists():
        sys.exit(f"{binary} is missing: run tools/setup.sh (or swift build -c release, as tools/build_flags.sh says) first")
    return binary
