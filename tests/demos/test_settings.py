"""Server settings: loopback by default, no public address without a login."""

import pytest

from demos.settings import DemoConfigError, DemoSettings, is_loopback, parse_auth


def test_defaults_are_local_and_quiet():
    s = DemoSettings().validate()
    assert s.host == "127.0.0.1" and s.auth is None and s.analytics is False
    kw = s.launch_kwargs()
    assert kw["share"] is False and kw["server_name"] == "127.0.0.1" and kw["max_file_size"] == s.max_file_size


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.1.1"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "medany.hospital.org"])
def test_public_host_without_auth_is_refused(host):
    assert not is_loopback(host)
    with pytest.raises(DemoConfigError, match="without a login"):
        DemoSettings(host=host).validate()
    with pytest.raises(DemoConfigError):
        DemoSettings(host=host).launch_kwargs()


def test_public_host_with_auth_is_allowed():
    s = DemoSettings(host="0.0.0.0", auth=parse_auth("ward:s3cret")).validate()
    assert s.launch_kwargs()["auth"] == ("ward", "s3cret")


@pytest.mark.parametrize("text", ["", "user", "user:", ":pass"])
def test_bad_auth_text(text):
    with pytest.raises(DemoConfigError):
        parse_auth(text)


def test_upload_limit_caps_loader_limits():
    limits = DemoSettings(max_file_size=1024).input_limits()
    assert limits.max_bytes == 1024
    with pytest.raises(Exception, match="too large"):
        limits.check_bytes(2048)


def test_analytics_env_is_switched_off(monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "True")
    DemoSettings().apply_environment()
    import os

    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
