import os

import pytest

from chatcrm.store import batch as batch_module
from chatcrm.store import open_store


@pytest.fixture(autouse=True)
def small_flushes(monkeypatch):
    """Imports write their rows every few messages, so that every test's import into
    an empty database takes the bulk path (index dropped, rebuilt at the end) as a
    large one would. CHATCRM_TEST_FLUSH=default keeps the real size."""
    if os.environ.get("CHATCRM_TEST_FLUSH") != "default":
        monkeypatch.setattr(batch_module, "FLUSH_EVERY", 3)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test touches a real user database, settings file, clock or terminal setting."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # no test reads the real user's settings file
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv("CHATCRM_CONFIG", raising=False)
    monkeypatch.delenv("CHATCRM_SLA", raising=False)
    monkeypatch.setenv("CHATCRM_DB", str(tmp_path / "chatcrm.db"))
    monkeypatch.setenv("CHATCRM_TZ", "UTC")
    monkeypatch.setenv("CHATCRM_AGENT", "Luis")
    monkeypatch.delenv("CHATCRM_NOW", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "service.db")
    yield s
    s.close()


