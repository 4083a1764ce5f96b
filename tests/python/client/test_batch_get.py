"""BatchGetSecrets against a real broker: per-item results in request order."""

from __future__ import annotations

import pytest

import secretsbroker
from testdata import MOUNT


def test_batch_keeps_request_order_and_reports_a_missing_item_without_failing_the_batch(client: secretsbroker.Client) -> None:
    paths = [
        f"{MOUNT}/ml/checkpoint-bucket",
        f"{MOUNT}/ml/missing",
        f"{MOUNT}/ml/training-db",
        f"{MOUNT}/certs/ca",
    ]

    results = client.batch_get(paths)

    assert [r.path for r in results] == paths
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[0].secret is not None and results[0].secret["access_key_id"] == "AKIAFAKEFAKEFAKEFAKE"
    assert results[2].unwrap()["password"] == "FAKE-password-not-real"
    assert results[3].unwrap().is_binary
    missing = results[1]
    assert missing.secret is None
    assert isinstance(missing.error, secretsbroker.NotFound)
    assert missing.error.path == f"{MOUNT}/ml/missing"
    with pytest.raises(secretsbroker.NotFound):
        missing.unwrap()


def test_batch_reports_each_kind_of_item_error_as_its_exception_class(client: secretsbroker.Client) -> None:
    results = client.batch_get([f"{MOUNT}//bad", "nomount/x", f"{MOUNT}/ml/training-db"])

    assert isinstance(results[0].error, secretsbroker.InvalidArgument)
    assert "empty segment" in results[0].error.message
    assert isinstance(results[1].error, secretsbroker.NotFound)
    assert results[2].ok


def test_batch_answers_a_repeated_path_at_every_position(client: secretsbroker.Client) -> None:
    path = f"{MOUNT}/ml/model-registry"

    results = client.batch_get([path, f"{MOUNT}/ml/training-db", path])

    assert [r.path for r in results] == [path, f"{MOUNT}/ml/training-db", path]
    assert results[0].unwrap().version == results[2].unwrap().version == "2"


def test_batch_accepts_any_iterable_of_paths(client: secretsbroker.Client) -> None:
    results = client.batch_get(p for p in (f"{MOUNT}/ml/training-db",))

    assert len(results) == 1 and results[0].ok


def test_batch_over_the_brokers_limit_raises_invalid_argument(client: secretsbroker.Client) -> None:
    paths = [f"{MOUNT}/pages/item-{i % 12:02d}" for i in range(101)]

    with pytest.raises(secretsbroker.InvalidArgument, match="the limit is 100"):
        client.batch_get(paths)


def test_empty_batch_returns_an_empty_list_without_a_call(client: secretsbroker.Client) -> None:
    assert client.batch_get([]) == []


def test_batch_refuses_a_single_string_instead_of_a_list(client: secretsbroker.Client) -> None:
    with pytest.raises(TypeError):
        client.batch_get(f"{MOUNT}/ml/training-db")
