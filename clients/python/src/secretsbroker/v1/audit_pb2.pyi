from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DECISION_ALLOW: Decision
DECISION_DENY: Decision
DECISION_ERROR: Decision
DECISION_UNSPECIFIED: Decision
DESCRIPTOR: _descriptor.FileDescriptor

class AuditEvent(_message.Message):
    __slots__ = ["action", "auth_method", "broker_instance", "cache_source", "caller", "caller_attributes", "decision", "grpc_status", "id", "latency", "lease_id_hmac", "mount", "path", "path_prefix_hmacs", "reason", "request_id", "sealed_path", "source_address", "time", "token_hmac", "trace_id", "version"]
    class CallerAttributesEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACTION_FIELD_NUMBER: _ClassVar[int]
    AUTH_METHOD_FIELD_NUMBER: _ClassVar[int]
    BROKER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    CACHE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CALLER_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    GRPC_STATUS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_HMAC_FIELD_NUMBER: _ClassVar[int]
    MOUNT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PATH_PREFIX_HMACS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEALED_PATH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_HMAC_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    action: str
    auth_method: str
    broker_instance: str
    cache_source: str
    caller: str
    caller_attributes: _containers.ScalarMap[str, str]
    decision: Decision
    grpc_status: int
    id: str
    latency: _duration_pb2.Duration
    lease_id_hmac: str
    mount: str
    path: str
    path_prefix_hmacs: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    request_id: str
    sealed_path: bytes
    source_address: str
    time: _timestamp_pb2.Timestamp
    token_hmac: str
    trace_id: str
    version: str
    def __init__(self, id: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., broker_instance: _Optional[str] = ..., request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., caller: _Optional[str] = ..., auth_method: _Optional[str] = ..., caller_attributes: _Optional[_Mapping[str, str]] = ..., source_address: _Optional[str] = ..., action: _Optional[str] = ..., path: _Optional[str] = ..., mount: _Optional[str] = ..., version: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ..., reason: _Optional[str] = ..., grpc_status: _Optional[int] = ..., cache_source: _Optional[str] = ..., latency: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., token_hmac: _Optional[str] = ..., lease_id_hmac: _Optional[str] = ..., sealed_path: _Optional[bytes] = ..., path_prefix_hmacs: _Optional[_Iterable[str]] = ...) -> None: ...

class ComputeHmacRequest(_message.Message):
    __slots__ = ["value"]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: str
    def __init__(self, value: _Optional[str] = ...) -> None: ...

class ComputeHmacResponse(_message.Message):
    __slots__ = ["hmac"]
    HMAC_FIELD_NUMBER: _ClassVar[int]
    hmac: str
    def __init__(self, hmac: _Optional[str] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ["action", "after_sequence", "caller", "decision", "limit", "path_prefix", "to"]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PATH_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    action: str
    after_sequence: int
    caller: str
    decision: Decision
    limit: int
    path_prefix: str
    to: _timestamp_pb2.Timestamp
    def __init__(self, to: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., caller: _Optional[str] = ..., path_prefix: _Optional[str] = ..., action: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ..., limit: _Optional[int] = ..., after_sequence: _Optional[int] = ..., **kwargs) -> None: ...

class StoredEvent(_message.Message):
    __slots__ = ["event", "hash", "previous_hash", "sequence", "unreadable"]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    UNREADABLE_FIELD_NUMBER: _ClassVar[int]
    event: AuditEvent
    hash: str
    previous_hash: str
    sequence: int
    unreadable: str
    def __init__(self, sequence: _Optional[int] = ..., event: _Optional[_Union[AuditEvent, _Mapping]] = ..., previous_hash: _Optional[str] = ..., hash: _Optional[str] = ..., unreadable: _Optional[str] = ...) -> None: ...

class TailRequest(_message.Message):
    __slots__ = ["after_sequence"]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    def __init__(self, after_sequence: _Optional[int] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ["detail", "first_broken_sequence", "ok", "records_checked"]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    FIRST_BROKEN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    RECORDS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    detail: str
    first_broken_sequence: int
    ok: bool
    records_checked: int
    def __init__(self, ok: bool = ..., records_checked: _Optional[int] = ..., first_broken_sequence: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
