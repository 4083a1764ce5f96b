from .._googleapis import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class DecryptDataKeyRequest(_message.Message):
    __slots__ = ["context", "key_path", "wrapped_key"]
    class ContextEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    context: _containers.ScalarMap[str, str]
    key_path: str
    wrapped_key: bytes
    def __init__(self, key_path: _Optional[str] = ..., wrapped_key: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DecryptDataKeyResponse(_message.Message):
    __slots__ = ["key_path", "key_version", "plaintext_key"]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_KEY_FIELD_NUMBER: _ClassVar[int]
    key_path: str
    key_version: str
    plaintext_key: bytes
    def __init__(self, plaintext_key: _Optional[bytes] = ..., key_path: _Optional[str] = ..., key_version: _Optional[str] = ...) -> None: ...

class DecryptRequest(_message.Message):
    __slots__ = ["ciphertext", "context", "key_path"]
    class ContextEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    context: _containers.ScalarMap[str, str]
    key_path: str
    def __init__(self, key_path: _Optional[str] = ..., ciphertext: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DecryptResponse(_message.Message):
    __slots__ = ["key_path", "key_version", "plaintext"]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    key_path: str
    key_version: str
    plaintext: bytes
    def __init__(self, plaintext: _Optional[bytes] = ..., key_path: _Optional[str] = ..., key_version: _Optional[str] = ...) -> None: ...

class EncryptRequest(_message.Message):
    __slots__ = ["context", "key_path", "plaintext"]
    class ContextEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _containers.ScalarMap[str, str]
    key_path: str
    plaintext: bytes
    def __init__(self, key_path: _Optional[str] = ..., plaintext: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EncryptResponse(_message.Message):
    __slots__ = ["ciphertext", "key_path", "key_version"]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    key_path: str
    key_version: str
    def __init__(self, ciphertext: _Optional[bytes] = ..., key_path: _Optional[str] = ..., key_version: _Optional[str] = ...) -> None: ...

class GenerateDataKeyRequest(_message.Message):
    __slots__ = ["context", "key_path"]
    class ContextEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    context: _containers.ScalarMap[str, str]
    key_path: str
    def __init__(self, key_path: _Optional[str] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GenerateDataKeyResponse(_message.Message):
    __slots__ = ["key_path", "key_version", "plaintext_key", "wrapped_key"]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_KEY_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    key_path: str
    key_version: str
    plaintext_key: bytes
    wrapped_key: bytes
    def __init__(self, plaintext_key: _Optional[bytes] = ..., wrapped_key: _Optional[bytes] = ..., key_path: _Optional[str] = ..., key_version: _Optional[str] = ...) -> None: ...

class RewrapRequest(_message.Message):
    __slots__ = ["ciphertext", "context", "key_path"]
    class ContextEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    context: _containers.ScalarMap[str, str]
    key_path: str
    def __init__(self, key_path: _Optional[str] = ..., ciphertext: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RewrapResponse(_message.Message):
    __slots__ = ["ciphertext", "key_path", "key_version"]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_PATH_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    key_path: str
    key_version: str
    def __init__(self, ciphertext: _Optional[bytes] = ..., key_path: _Optional[str] = ..., key_version: _Optional[str] = ...) -> None: ...
