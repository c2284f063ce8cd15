import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import greenlight_support as gs  # noqa: E402


def pytest_collection_modifyitems(config, items):
    no_server = pytest.mark.skip(reason="GREENLIGHT_URL and GREENLIGHT_ADMIN_TOKEN are not set")
    no_templates = pytest.mark.skip(reason="CONFORMANCE_SKIP contains templates")
    for item in items:
        if "server" in item.keywords and not gs.server_configured():
            item.add_marker(no_server)
        elif "templates" in item.keywords and "templates" in gs.SKIP:
            item.add_marker(no_templates)
