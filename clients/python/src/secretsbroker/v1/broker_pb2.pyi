from .._googleapis import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
LEASE_EVENT_TYPE_ATTACHED: LeaseEventType
LEASE_EVENT_TYPE_ERROR: LeaseEventType
LEASE_EVENT_TYPE_EXPIRED: LeaseEventType
LEASE_EVENT_TYPE_RENEWED: LeaseEventType
LEASE_EVENT_TYPE_REVOKED: LeaseEventType
LEASE_EVENT_TYPE_ROTATED: LeaseEventType
LEASE_EVENT_TYPE_UNSPECIFIED: LeaseEventType
VALUE_SOURCE_BACKEND: ValueSource
VALUE_SOURCE_L1: ValueSource
VALUE_SOURCE_L2: ValueSource
VALUE_SOURCE_UNSPECIFIED: ValueSource

class BatchGetSecretsRequest(_message.Message):
    __slots__ = ["paths"]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetSecretsResponse(_message.Message):
    __slots__ = ["results"]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchGetSecretsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchGetSecretsResult, _Mapping]]] = ...) -> None: ...

class BatchGetSecretsResult(_message.Message):
    __slots__ = ["error", "path", "secret"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    error: ItemError
    path: str
    secret: Secret
    def __init__(self, path: _Optional[str] = ..., secret: _Optional[_Union[Secret, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class GetSecretRequest(_message.Message):
    __slots__ = ["bypass_cache", "max_age", "path", "stage", "version"]
    BYPASS_CACHE_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    bypass_cache: bool
    max_age: _duration_pb2.Duration
    path: str
    stage: str
    version: str
    def __init__(self, path: _Optional[str] = ..., version: _Optional[str] = ..., stage: _Optional[str] = ..., max_age: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., bypass_cache: bool = ...) -> None: ...

class GetSecretResponse(_message.Message):
    __slots__ = ["secret"]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: Secret
    def __init__(self, secret: _Optional[_Union[Secret, _Mapping]] = ...) -> None: ...

class IssueCredentialsRequest(_message.Message):
    __slots__ = ["path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ["code", "message"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class KeepAliveRequest(_message.Message):
    __slots__ = ["attach_lease_ids", "detach_lease_ids"]
    ATTACH_LEASE_IDS_FIELD_NUMBER: _ClassVar[int]
    DETACH_LEASE_IDS_FIELD_NUMBER: _ClassVar[int]
    attach_lease_ids: _containers.RepeatedScalarFieldContainer[str]
    detach_lease_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, attach_lease_ids: _Optional[_Iterable[str]] = ..., detach_lease_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ["credentials", "expires_at", "lease_id", "path", "renewable", "ttl"]
    class CredentialsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RENEWABLE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    credentials: _containers.ScalarMap[str, str]
    expires_at: _timestamp_pb2.Timestamp
    lease_id: str
    path: str
    renewable: bool
    ttl: _duration_pb2.Duration
    def __init__(self, lease_id: _Optional[str] = ..., credentials: _Optional[_Mapping[str, str]] = ..., ttl: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., renewable: bool = ..., expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., path: _Optional[str] = ...) -> None: ...

class LeaseEvent(_message.Message):
    __slots__ = ["error", "expires_at", "lease_id", "rotated_to", "time", "type"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ROTATED_TO_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    error: ItemError
    expires_at: _timestamp_pb2.Timestamp
    lease_id: str
    rotated_to: Lease
    time: _timestamp_pb2.Timestamp
    type: LeaseEventType
    def __init__(self, lease_id: _Optional[str] = ..., type: _Optional[_Union[LeaseEventType, str]] = ..., expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., rotated_to: _Optional[_Union[Lease, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSecretsRequest(_message.Message):
    __slots__ = ["page_size", "page_token", "prefix"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    prefix: str
    def __init__(self, prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSecretsResponse(_message.Message):
    __slots__ = ["next_page_token", "secrets"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    secrets: _containers.RepeatedCompositeFieldContainer[SecretListing]
    def __init__(self, secrets: _Optional[_Iterable[_Union[SecretListing, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PutSecretRequest(_message.Message):
    __slots__ = ["binary_data", "data", "expected_version", "path"]
    class DataEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BINARY_DATA_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    binary_data: bytes
    data: _containers.ScalarMap[str, str]
    expected_version: str
    path: str
    def __init__(self, path: _Optional[str] = ..., data: _Optional[_Mapping[str, str]] = ..., binary_data: _Optional[bytes] = ..., expected_version: _Optional[str] = ...) -> None: ...

class PutSecretResponse(_message.Message):
    __slots__ = ["created_time", "path", "version"]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    created_time: _timestamp_pb2.Timestamp
    path: str
    version: str
    def __init__(self, path: _Optional[str] = ..., version: _Optional[str] = ..., created_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RevokeLeaseRequest(_message.Message):
    __slots__ = ["lease_id"]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    def __init__(self, lease_id: _Optional[str] = ...) -> None: ...

class RevokeLeaseResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class RotateSecretRequest(_message.Message):
    __slots__ = ["path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class RotateSecretResponse(_message.Message):
    __slots__ = ["created_time", "path", "previous_version", "strategy", "version"]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    created_time: _timestamp_pb2.Timestamp
    path: str
    previous_version: str
    strategy: str
    version: str
    def __init__(self, path: _Optional[str] = ..., version: _Optional[str] = ..., created_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., strategy: _Optional[str] = ..., previous_version: _Optional[str] = ...) -> None: ...

class Secret(_message.Message):
    __slots__ = ["binary_data", "created_time", "data", "path", "serving", "stages", "version"]
    class DataEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BINARY_DATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    binary_data: bytes
    created_time: _timestamp_pb2.Timestamp
    data: _containers.ScalarMap[str, str]
    path: str
    serving: ServingMetadata
    stages: _containers.RepeatedScalarFieldContainer[str]
    version: str
    def __init__(self, path: _Optional[str] = ..., version: _Optional[str] = ..., created_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., data: _Optional[_Mapping[str, str]] = ..., binary_data: _Optional[bytes] = ..., stages: _Optional[_Iterable[str]] = ..., serving: _Optional[_Union[ServingMetadata, _Mapping]] = ...) -> None: ...

class SecretEvent(_message.Message):
    __slots__ = ["path", "time", "version"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    path: str
    time: _timestamp_pb2.Timestamp
    version: str
    def __init__(self, path: _Optional[str] = ..., version: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SecretListing(_message.Message):
    __slots__ = ["latest_version", "path", "updated_time"]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    latest_version: str
    path: str
    updated_time: _timestamp_pb2.Timestamp
    def __init__(self, path: _Optional[str] = ..., latest_version: _Optional[str] = ..., updated_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ServingMetadata(_message.Message):
    __slots__ = ["age", "backend_type", "mount", "source", "stale"]
    AGE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_TYPE_FIELD_NUMBER: _ClassVar[int]
    MOUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    age: _duration_pb2.Duration
    backend_type: str
    mount: str
    source: ValueSource
    stale: bool
    def __init__(self, mount: _Optional[str] = ..., backend_type: _Optional[str] = ..., source: _Optional[_Union[ValueSource, str]] = ..., age: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., stale: bool = ...) -> None: ...

class WatchSecretsRequest(_message.Message):
    __slots__ = ["paths", "prefixes"]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    prefixes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ..., prefixes: _Optional[_Iterable[str]] = ...) -> None: ...

class ValueSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class LeaseEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
