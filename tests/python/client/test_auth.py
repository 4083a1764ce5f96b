"""Credentials against a real broker: missing and wrong tokens, token files re-read on every call."""

from __future__ import annotations

import pathlib

import pytest

import secretsbroker
from brokerproc import BrokerProcess
from testdata import MOUNT, ROTATED_TOKEN, TOKEN, WRONG_TOKEN

PATH = f"{MOUNT}/ml/training-db"


def test_a_call_without_a_token_raises_unauthenticated_explaining_what_to_send(broker: BrokerProcess) -> None:
    with secretsbroker.Client(broker.target) as client:
        with pytest.raises(secretsbroker.Unauthenticated, match="Bearer"):
            client.get_secret(PATH)


def test_a_wrong_token_raises_unauthenticated_saying_it_is_not_valid(broker: BrokerProcess) -> None:
    with secretsbroker.Client(broker.target, token=WRONG_TOKEN) as client:
        with pytest.raises(secretsbroker.Unauthenticated, match="not valid"):
            client.get_secret(PATH)


def test_every_rpc_requires_a_token(broker: BrokerProcess) -> None:
    with secretsbroker.Client(broker.target, token=WRONG_TOKEN) as client:
        with pytest.raises(secretsbroker.Unauthenticated):
            client.batch_get([PATH])
        with pytest.raises(secretsbroker.Unauthenticated):
            next(client.list(MOUNT))


def test_unauthenticated_wins_over_a_malformed_path(broker: BrokerProcess) -> None:
    """An anonymous caller learns nothing about paths, not even whether they are well formed."""
    with secretsbroker.Client(broker.target) as client:
        with pytest.raises(secretsbroker.Unauthenticated):
            client.get_secret("a//b")


def test_token_from_a_file_authenticates_and_a_trailing_newline_is_ignored(broker: BrokerProcess, token_file: pathlib.Path) -> None:
    with secretsbroker.Client(broker.target, token_file=token_file) as client:
        assert client.get_secret(PATH)["username"] == "FAKE_trainer"


def test_token_file_is_read_again_on_every_call_so_a_rotated_token_is_used(broker: BrokerProcess, token_file: pathlib.Path) -> None:
    with secretsbroker.Client(broker.target, token_file=str(token_file)) as client:
        assert client.get_secret(PATH).version == "1"

        token_file.write_text(WRONG_TOKEN, encoding="utf-8")
        with pytest.raises(secretsbroker.Unauthenticated):
            client.get_secret(PATH)

        token_file.write_text(ROTATED_TOKEN, encoding="utf-8")
        assert client.get_secret(PATH).version == "1"


def test_a_missing_token_file_raises_unauthenticated_without_calling(broker: BrokerProcess, tmp_path: pathlib.Path) -> None:
    with secretsbroker.Client(broker.target, token_file=tmp_path / "absent") as client:
        with pytest.raises(secretsbroker.Unauthenticated, match="cannot read the token file"):
            client.get_secret(PATH)


def test_an_empty_token_file_raises_unauthenticated(broker: BrokerProcess, tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with secretsbroker.Client(broker.target, token_file=empty) as client:
        with pytest.raises(secretsbroker.Unauthenticated, match="empty"):
            client.get_secret(PATH)


def test_token_comes_from_the_environment_when_none_is_given(broker: BrokerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(secretsbroker.TOKEN_ENV, TOKEN)
    with secretsbroker.Client(broker.target) as client:
        assert client.get_secret(PATH).version == "1"


def test_token_file_named_by_the_environment_is_used_when_none_is_given(
    broker: BrokerProcess, token_file: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(secretsbroker.TOKEN_FILE_ENV, str(token_file))
    monkeypatch.setenv(secretsbroker.TOKEN_ENV, WRONG_TOKEN)
    with secretsbroker.Client(broker.target) as client:
        assert client.get_secret(PATH).version == "1"


def test_an_explicit_token_overrides_the_environment(broker: BrokerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(secretsbroker.TOKEN_ENV, TOKEN)
    with secretsbroker.Client(broker.target, token=WRONG_TOKEN) as client:
        with pytest.raises(secretsbroker.Unauthenticated):
            client.get_secret(PATH)


def test_token_and_token_file_together_are_refused(token_file: pathlib.Path) -> None:
    with pytest.raises(ValueError):
        secretsbroker.Client("127.0.0.1:1", token=TOKEN, token_file=token_file)


def test_a_projected_token_swapped_by_symlink_is_picked_up(broker: BrokerProcess, tmp_path: pathlib.Path) -> None:
    """Kubernetes projected volumes rotate a token by repointing the `..data` symlink to a new directory."""
    volume = tmp_path / "volume"
    for name, token in (("..2026_01", WRONG_TOKEN), ("..2026_02", TOKEN)):
        (volume / name).mkdir(parents=True)
        (volume / name / "token").write_text(token, encoding="utf-8")
    (volume / "..data").symlink_to("..2026_01")
    (volume / "token").symlink_to("..data/token")

    with secretsbroker.Client(broker.target, token_file=volume / "token") as client:
        with pytest.raises(secretsbroker.Unauthenticated):
            client.get_secret(PATH)

        swap = volume / "..data_tmp"
        swap.symlink_to("..2026_02")
        swap.replace(volume / "..data")
        assert client.get_secret(PATH).version == "1"


def test_a_path_the_policy_denies_raises_permission_denied_whether_or_not_it_exists(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.PermissionDenied, match="permission denied") as existing_or_not:
        client.get_secret(f"{MOUNT}/restricted/anything")
    assert existing_or_not.value.code.name == "PERMISSION_DENIED"
    results = client.batch_get([PATH, f"{MOUNT}/restricted/other"])
    assert results[0].ok
    assert isinstance(results[1].error, secretsbroker.PermissionDenied)
