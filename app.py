"""Launch the web app (chat UI at /, API, OpenAI-compatible endpoint, widget) with uvicorn.

    python app.py      # http://127.0.0.1:7860 ; OVPERF_HOST / OVPERF_PORT and the other OVPERF_* variables
"""

from __future__ import annotations

import os
import sys

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.portal import PortalSettings
from assistant.server import serve


def main() -> int:
    """Build settings from the environment and serve until interrupted."""
    port_text = os.environ.get("OVPERF_PORT", "7860")
    if not port_text.isdigit():
        print(f"error: OVPERF_PORT must be a port number, not {port_text!r}", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env(os.environ)
        portal = PortalSettings.from_env(os.environ)
        serve(settings, host=os.environ.get("OVPERF_HOST", "127.0.0.1"), port=int(port_text), portal=portal)
    except AssistantError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
