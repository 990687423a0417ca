"""`python -m services.admin --data-dir DIR [--host H] [--port N]` (services/admin/server.py)."""

from __future__ import annotations

import sys

from services.admin.server import main

if __name__ == "__main__":
    sys.exit(main())
