"""Python client for SecretsBroker, the gRPC secrets broker.

Quick start::

    import secretsbroker

    with secretsbroker.Client("127.0.0.1:5151", token_file="/var/run/secrets/broker-token") as client:
        db = client.get_secret("kv/teams/alpha/db")
        print(db.version, db.created_time)   # never print dict(db): it holds the secret

Or configured from the environment ($SECRETSBROKER_ADDRESS, $SECRETSBROKER_TOKEN_FILE, $SECRETSBROKER_CA_FILE)::

    from secretsbroker import get_secret
    password = get_secret("kv/teams/alpha/db")["password"]

The asyncio client is :class:`secretsbroker.aio.Client`.

The generated protobuf/gRPC stubs live in :mod:`secretsbroker.v1` (``broker_pb2``, ``broker_pb2_grpc``).
"""

__version__ = "0.1.0"

from .client import ADDRESS_ENV, CA_FILE_ENV, DEFAULT_TIMEOUT, TOKEN_ENV, TOKEN_FILE_ENV, Client  # noqa: E402
from ._default import batch_get, close_default_client, default_client, get_secret, list_secrets, put_secret, rotate_secret  # noqa: E402
from .errors import (  # noqa: E402
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    LeaseLost,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SecretsBrokerError,
    Unauthenticated,
    Unavailable,
)
from .lease import Lease  # noqa: E402
from .models import (  # noqa: E402
    BatchResult,
    IssuedLease,
    LeaseEvent,
    LeaseEventType,
    ListPage,
    Secret,
    SecretEvent,
    SecretListing,
    ServingInfo,
    WrittenSecret,
)
from .watch import SecretWatch  # noqa: E402

__all__ = [
    "__version__",
    "Client",
    "DEFAULT_TIMEOUT",
    "ADDRESS_ENV",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "CA_FILE_ENV",
    "get_secret",
    "rotate_secret",
    "batch_get",
    "list_secrets",
    "put_secret",
    "default_client",
    "close_default_client",
    "Secret",
    "ServingInfo",
    "SecretListing",
    "ListPage",
    "BatchResult",
    "Lease",
    "IssuedLease",
    "LeaseEvent",
    "LeaseEventType",
    "SecretWatch",
    "SecretEvent",
    "WrittenSecret",
    "SecretsBrokerError",
    "InvalidArgument",
    "Unauthenticated",
    "PermissionDenied",
    "NotFound",
    "FailedPrecondition",
    "ResourceExhausted",
    "Unavailable",
    "DeadlineExceeded",
    "Cancelled",
    "Internal",
    "LeaseLost",
]
