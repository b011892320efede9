"""The `reconciler` command and `python -m reconciler`: signal handling first, then the command line."""

from __future__ import annotations

import signal
import sys
from types import FrameType

INTERRUPTED = 130


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM is handled as Ctrl-C is at that moment: asyncio's cancellation, apply's graceful stop
    (which installs its own handler), or KeyboardInterrupt."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):  # Ctrl-C ignored or left to the system: SIGTERM still stops the run
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)


def main() -> None:
    # Before anything else is imported or done: a run stopped at any point exits 130 with its message,
    # never by the default SIGTERM handler nor by an uncaught KeyboardInterrupt (-2).
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        from reconciler.cli import main as run

        run()
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()
