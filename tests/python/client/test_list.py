"""ListSecrets against a real broker: pagination, folders, and listing errors."""

from __future__ import annotations

import datetime as dt

import pytest

import secretsbroker
from testdata import MOUNT, PAGINATION_COUNT

EXPECTED_PAGES = [f"{MOUNT}/pages/item-{i:02d}" for i in range(PAGINATION_COUNT)]


def test_list_iterates_across_pages_in_ordinal_order(client: secretsbroker.Client) -> None:
    listed = list(client.list(f"{MOUNT}/pages", page_size=5))

    assert [entry.path for entry in listed] == EXPECTED_PAGES
    assert all(entry.latest_version == "1" for entry in listed)
    assert all(isinstance(entry.updated_time, dt.datetime) for entry in listed)


def test_list_page_returns_tokens_until_the_last_page(client: secretsbroker.Client) -> None:
    pages = []
    token = ""
    while True:
        page = client.list_page(f"{MOUNT}/pages", page_size=5, page_token=token)
        pages.append([entry.path for entry in page.secrets])
        token = page.next_page_token
        if not token:
            break

    assert [len(p) for p in pages] == [5, 5, 2]
    assert [path for p in pages for path in p] == EXPECTED_PAGES


def test_list_of_an_exact_page_multiple_ends_without_an_empty_extra_page(client: secretsbroker.Client) -> None:
    first = client.list_page(f"{MOUNT}/pages", page_size=6)
    second = client.list_page(f"{MOUNT}/pages", page_size=6, page_token=first.next_page_token)

    assert len(first.secrets) == 6 and first.next_page_token
    assert len(second.secrets) == 6
    assert second.next_page_token == ""


def test_list_of_a_folder_contains_only_what_is_beneath_it(client: secretsbroker.Client) -> None:
    listed = [entry.path for entry in client.list(f"{MOUNT}/ml")]

    assert listed == [f"{MOUNT}/ml/checkpoint-bucket", f"{MOUNT}/ml/model-registry", f"{MOUNT}/ml/training-db"]


def test_list_of_the_mount_prefix_lists_the_whole_mount_with_latest_versions(client: secretsbroker.Client) -> None:
    listed = {entry.path: entry for entry in client.list(MOUNT, page_size=3)}

    assert len(listed) == 4 + PAGINATION_COUNT
    assert listed[f"{MOUNT}/ml/model-registry"].latest_version == "2"
    assert listed[f"{MOUNT}/ml/model-registry"].updated_time == dt.datetime(2026, 6, 1, 12, 30, tzinfo=dt.timezone.utc)


def test_list_of_an_empty_folder_yields_nothing(client: secretsbroker.Client) -> None:
    assert list(client.list(f"{MOUNT}/nothing-here")) == []


def test_list_page_token_of_another_prefix_raises_invalid_argument(client: secretsbroker.Client) -> None:
    token = client.list_page(f"{MOUNT}/pages", page_size=2).next_page_token

    with pytest.raises(secretsbroker.InvalidArgument, match="invalid page token"):
        client.list_page(f"{MOUNT}/ml", page_size=2, page_token=token)


def test_list_garbage_page_token_raises_invalid_argument(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.InvalidArgument, match="invalid page token"):
        client.list_page(f"{MOUNT}/pages", page_token="not-a-token")


def test_list_page_size_above_the_maximum_raises_invalid_argument(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.InvalidArgument, match="page_size"):
        next(client.list(f"{MOUNT}/pages", page_size=1001))


def test_list_of_a_malformed_prefix_raises_invalid_argument(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.InvalidArgument, match="empty segment"):
        next(client.list("a//b"))


def test_list_of_an_unknown_mount_raises_not_found(client: secretsbroker.Client) -> None:
    with pytest.raises(secretsbroker.NotFound):
        next(client.list("nomount"))
