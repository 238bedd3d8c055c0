"""Server settings: loopback by default, no public address without an API key."""

from __future__ import annotations

import pytest

from multimodal.serve import ServeConfigError, ServeSettings
from multimodal.serve.settings import api_keys_from_env


def test_defaults_are_local_and_closed():
    s = ServeSettings().validate()
    assert s.host == "127.0.0.1" and s.api_keys == () and s.allow_local_files is False
    assert s.resolved_dirs() == ()
    assert s.input_limits().max_bytes == s.max_request_bytes


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "medany.hospital.org"])
def test_public_host_needs_a_key(host):
    with pytest.raises(ServeConfigError, match="without an API key"):
        ServeSettings(host=host).validate()
    ServeSettings(host=host, api_keys=("a-long-enough-key",)).validate()


@pytest.mark.parametrize("keys", [("short",), ("",), (" padded-key-123 ",)])
def test_weak_keys_are_refused(keys):
    with pytest.raises(ServeConfigError):
        ServeSettings(api_keys=keys).validate()


@pytest.mark.parametrize("field, value", [("port", 70000), ("queue_size", 0), ("request_timeout_s", 0),
                                          ("max_request_bytes", -1), ("model_name", " ")])
def test_impossible_values(field, value):
    with pytest.raises(ServeConfigError):
        ServeSettings(**{field: value}).validate()


def test_local_files_need_existing_folders(tmp_path):
    with pytest.raises(ServeConfigError):
        ServeSettings(allow_local_files=True).validate()
    with pytest.raises(ServeConfigError, match="not found"):
        ServeSettings(allow_local_files=True, allowed_dirs=(str(tmp_path / "nope"),)).validate()
    s = ServeSettings(allow_local_files=True, allowed_dirs=[str(tmp_path / "." / "")]).validate()
    assert s.resolved_dirs() == (tmp_path.resolve(),)


def test_keys_from_environment():
    assert api_keys_from_env({"MEDANY_API_KEYS": " key-one-123, ,key-two-456 "}) == ("key-one-123", "key-two-456")
    assert api_keys_from_env({}) == ()
