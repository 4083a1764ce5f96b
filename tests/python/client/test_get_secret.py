"""GetSecret against a real broker: latest, by version, binary, and every error it can produce."""

from __future__ import annotations

import datetime as dt

import pytest

import secretsbroker
from testdata import BINARY_VALUE, MOUNT

UTC = dt.timezone.utc


def test_get_returns_the_latest_version_with_its_fields_and_serving_info(client: secretsbroker.Client) -> None:
    secret = client.get_secret(f"{MOUNT}/ml/training-db")

    assert secret.path == f"{MOUNT}/ml/training-db"
    assert secret.version == "1"
    assert secret.data == {
        "host": "postgres.test.invalid",
        "port": "5432",
        "username": "FAKE_trainer",
        "password": "FAKE-password-not-real",
    }
    assert secret["username"] == "FAKE_trainer"
    assert secret.get("missing") is None
    assert secret.binary == b""
    assert not secret.is_binary
    assert secret.stages == ()
    assert isinstance(secret.created_time, dt.datetime) and secret.created_time.tzinfo is not None
    assert secret.serving is not None
    assert secret.serving.mount == MOUNT
    assert secret.serving.backend_type == "local"
    assert secret.serving.source in ("backend", "l1")
    assert secret.serving.age == dt.timedelta(0) if secret.serving.source == "backend" else secret.serving.age > dt.timedelta(0)
    assert secret.serving.stale is False


def test_get_without_a_version_returns_the_newest_of_several(client: secretsbroker.Client) -> None:
    secret = client.get_secret(f"{MOUNT}/ml/model-registry")

    assert secret.version == "2"
    assert secret.data == {"token": "FAKE-registry-token-v2"}
    assert secret.created_time == dt.datetime(2026, 6, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize("version", ["1", 1])
def test_get_by_version_returns_that_version(client: secretsbroker.Client, version: object) -> None:
    secret = client.get_secret(f"{MOUNT}/ml/model-registry", version=version)  # type: ignore[arg-type]

    assert secret.version == "1"
    assert secret.data == {"token": "FAKE-registry-token-v1"}
    assert secret.created_time == dt.datetime(2026, 1, 1, tzinfo=UTC)


def test_binary_secret_arrives_as_exact_bytes_with_empty_data(client: secretsbroker.Client) -> None:
    secret = client.get_secret(f"{MOUNT}/certs/ca")

    assert secret.binary == BINARY_VALUE
    assert secret.data == {}
    assert secret.is_binary


def test_repr_of_a_secret_never_shows_its_values(client: secretsbroker.Client) -> None:
    secret = client.get_secret(f"{MOUNT}/ml/training-db")

    text = repr(secret) + str(secret)
    assert "FAKE-password-not-real" not in text
    assert "FAKE_trainer" not in text
    assert f"{MOUNT}/ml/training-db" in text


def test_missing_secret_raises_not_found_carrying_the_path(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.NotFound) as caught:
        client.get_secret(f"{MOUNT}/ml/does-not-exist")

    error = caught.value
    assert isinstance(error, secretsbroker.SecretsBrokerError)
    assert error.code.name == "NOT_FOUND"
    assert error.path == f"{MOUNT}/ml/does-not-exist"
    assert "not found" in error.message
    assert "does-not-exist" not in str(error)


def test_unknown_mount_raises_not_found(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.NotFound, match="no mount"):
        client.get_secret("nomount/anything")


def test_version_that_does_not_exist_raises_not_found(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.NotFound, match="version 9 does not exist"):
        client.get_secret(f"{MOUNT}/ml/model-registry", version=9)


@pytest.mark.parametrize(
    "path, rule",
    [
        ("a//b", "empty segment"),
        (f"{MOUNT}//ml/training-db", "empty segment"),
        ("", "must not be empty"),
        ("/team/ml/training-db", "must not start with '/'"),
        ("team/ml/training-db/", "must not end with '/'"),
        ("team/../team/ml/training-db", "relative segments"),
        ("team/ml/training db", "character"),
        ("team/" + "x" * 600, "limit is 512"),
    ],
)
def test_malformed_path_raises_invalid_argument_naming_the_rule(client: secretsbroker.Client, path: str, rule: str) -> None:
    with pytest.raises(secretsbroker.InvalidArgument) as caught:
        client.get_secret(path)

    assert rule in caught.value.message


def test_path_naming_only_a_mount_raises_invalid_argument(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.InvalidArgument, match="names a mount"):
        client.get_secret(MOUNT)


def test_version_that_is_not_a_number_raises_invalid_argument_on_a_local_mount(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.InvalidArgument, match="positive whole number"):
        client.get_secret(f"{MOUNT}/ml/model-registry", version="latest")


def test_stage_on_a_local_mount_raises_failed_precondition(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.FailedPrecondition, match="no stages"):
        client.get_secret(f"{MOUNT}/ml/model-registry", stage="AWSCURRENT")


def test_version_and_stage_together_are_refused_before_calling(client: secretsbroker.Client) -> None:
    with pytest.raises(ValueError):
        client.get_secret(f"{MOUNT}/ml/model-registry", version="1", stage="AWSCURRENT")


def test_bypassing_the_cache_reads_the_backend_and_a_repeat_is_served_from_l1(client: secretsbroker.Client) -> None:
    path = f"{MOUNT}/ml/training-db"
    fresh = client.get_secret(path, bypass_cache=True)
    assert fresh.serving.source == "backend"
    assert fresh.serving.age.total_seconds() == 0
    cached = client.get_secret(path)
    assert cached.serving.source == "l1"
    # Any cached value is older than a nanosecond, so the broker reads the backend again.
    assert client.get_secret(path, max_age=1e-9).serving.source == "backend"


def test_a_secret_is_a_read_only_mapping_of_its_fields_that_never_shows_values(client: secretsbroker.Client) -> None:
    import collections.abc

    secret = client.get_secret(f"{MOUNT}/ml/training-db")

    assert isinstance(secret, collections.abc.Mapping)
    assert "password" in secret and "missing" not in secret
    assert sorted(secret) == ["host", "password", "port", "username"]
    assert sorted(secret.keys()) == sorted(secret) and len(secret) == 4
    assert dict(secret) == {
        "host": "postgres.test.invalid",
        "port": "5432",
        "username": "FAKE_trainer",
        "password": "FAKE-password-not-real",
    }
    assert dict(**secret)["username"] == "FAKE_trainer"
    assert secret.get("port", "1") == "5432" and secret.get("missing", "d") == "d"
    assert dict(secret.items())["host"] == "postgres.test.invalid"
    # Read-only: neither the secret nor its data can be changed.
    with pytest.raises(TypeError):
        secret["password"] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        secret.data["password"] = "changed"  # type: ignore[index]
    # No value in any text a log line could get.
    for text in (repr(secret), str(secret), repr(secret.keys()), repr(secret.items()), repr(secret.values())):
        assert "FAKE-password-not-real" not in text and "FAKE_trainer" not in text
    # A binary secret is an empty mapping.
    binary = client.get_secret(f"{MOUNT}/certs/ca")
    assert len(binary) == 0 and dict(binary) == {} and binary.binary == BINARY_VALUE
