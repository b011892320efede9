"""The `reconciler` command and `python -m reconciler`: signal handling first, then the command line,
then a quick exit."""

from __future__ import annotations

import gc
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
    # httpx imports its own command line (click, rich, pygments) whenever they are installed, which is
    # a third of its import time in every run; this process never calls it (httpx.main then says so).
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        from reconciler.cli import main as run

        run()
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(INTERRUPTED)
    finally:
        # The run is over and every file it wrote is closed. The interpreter's last collection would
        # walk every object the run made (a tenth of a second after a 1,000-secret apply) only to
        # free memory the process gives back anyway; frozen objects are left out of it.
        gc.freeze()


if __name__ == "__main__":
    main()
