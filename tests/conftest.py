import pytest

from chatcrm.store import open_store


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test touches a real user database, clock or terminal setting."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
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


