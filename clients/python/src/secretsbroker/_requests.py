"""Request building and response mapping shared by the sync and the asyncio client.

Each client only moves the messages built here over its own transport (grpc or grpc.aio), so argument
checks, defaults and the mapping to :mod:`secretsbroker.models` exist once.
"""

from __future__ import annotations

from typing import Iterable, List, Mapping, Optional, Union

from .models import BatchResult, IssuedLease, ListPage, Rotation, Secret, SecretListing, WrittenSecret
from .v1 import broker_pb2 as pb


def get_secret(
    path: str,
    version: Union[str, int, None],
    stage: Optional[str],
    max_age: Optional[float],
    bypass_cache: bool,
) -> pb.GetSecretRequest:
    if version is not None and stage is not None:
        raise ValueError("select a version or a stage, not both")
    request = pb.GetSecretRequest(path=path)
    if version is not None:
        request.version = str(version)
    elif stage is not None:
        request.stage = stage
    if max_age is not None:
        if max_age <= 0:
            raise ValueError("max_age must be positive (seconds); use bypass_cache=True to skip the cache")
        request.max_age.FromNanoseconds(max(1, int(max_age * 1e9)))
    request.bypass_cache = bypass_cache
    return request


def secret(response: pb.GetSecretResponse) -> Secret:
    return Secret._from_proto(response.secret)


def batch_get(paths: Iterable[str]) -> Optional[pb.BatchGetSecretsRequest]:
    """None for an empty list (answered with [] without calling the broker)."""
    if isinstance(paths, (str, bytes)):
        raise TypeError("batch_get takes a list of paths, not a single path; use get_secret for one")
    path_list = list(paths)
    return pb.BatchGetSecretsRequest(paths=path_list) if path_list else None


def batch_results(response: pb.BatchGetSecretsResponse) -> List[BatchResult]:
    return [BatchResult._from_proto(result) for result in response.results]


def list_page(prefix: str, page_size: Optional[int], page_token: str) -> pb.ListSecretsRequest:
    return pb.ListSecretsRequest(prefix=prefix, page_size=page_size or 0, page_token=page_token)


def page(response: pb.ListSecretsResponse) -> ListPage:
    return ListPage(secrets=[SecretListing._from_proto(entry) for entry in response.secrets], next_page_token=response.next_page_token)


def put_secret(
    path: str,
    data: Optional[Mapping[str, str]],
    binary: Optional[bytes],
    expected_version: Union[str, int, None],
) -> pb.PutSecretRequest:
    if (data is None) == (binary is None):
        raise ValueError("give exactly one of data (a mapping of fields) and binary (bytes)")
    request = pb.PutSecretRequest(path=path)
    if data is not None:
        if isinstance(data, (str, bytes)) or not isinstance(data, Mapping):
            raise TypeError("data must be a mapping of field names to strings")
        if not data:
            raise ValueError("data must have at least one field")
        for name, value in data.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("data must map strings to strings")
            request.data[name] = value
    else:
        if not isinstance(binary, (bytes, bytearray, memoryview)):
            raise TypeError("binary must be bytes")
        if len(binary) == 0:
            raise ValueError("binary must not be empty")
        request.binary_data = bytes(binary)
    if expected_version is not None:
        request.expected_version = str(expected_version)
    return request


def written(response: pb.PutSecretResponse) -> WrittenSecret:
    return WrittenSecret._from_proto(response)


def issue_credentials(path: str) -> pb.IssueCredentialsRequest:
    return pb.IssueCredentialsRequest(path=path)


def issued(response: pb.Lease) -> IssuedLease:
    return IssuedLease._from_proto(response)


def revoke_lease(lease_id: str) -> pb.RevokeLeaseRequest:
    return pb.RevokeLeaseRequest(lease_id=lease_id)


def attach(lease_id: str) -> pb.KeepAliveRequest:
    return pb.KeepAliveRequest(attach_lease_ids=[lease_id])


def watch(paths: Optional[Iterable[str]], prefixes: Optional[Iterable[str]]) -> pb.WatchSecretsRequest:
    if isinstance(paths, (str, bytes)) or isinstance(prefixes, (str, bytes)):
        raise TypeError("watch takes lists: watch(paths=[...], prefixes=[...])")
    path_list, prefix_list = list(paths or []), list(prefixes or [])
    if not path_list and not prefix_list:
        raise ValueError("watch needs at least one path or prefix")
    return pb.WatchSecretsRequest(paths=path_list, prefixes=prefix_list)


def rotate_secret(path: str) -> pb.RotateSecretRequest:
    return pb.RotateSecretRequest(path=path)


def rotation(response: pb.RotateSecretResponse) -> Rotation:
    return Rotation._from_proto(response)
