"""Shared setup for the Python tests: import the client from source (clients/python/src)."""

import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CLIENT_SRC = REPO_ROOT / "clients" / "python" / "src"

if str(CLIENT_SRC) not in sys.path:
    sys.path.insert(0, str(CLIENT_SRC))
