"""HTTP/JSON (docs/http.md) from Python's standard library over HTTP/1.1, against a real broker process.

The v1 API through gRPC JSON transcoding on the broker's cleartext HTTP/1.1 port (Broker:Http:Urls), the AWS Secrets Manager
Agent drop-in with the agent README's request shape, and the Dapr secrets API drop-in. No stubs, no grpc: what a shell job,
notebook or third-party program has.
"""

from __future__ import annotations

import base64
import http.client
import json
import pathlib
import urllib.error
import urllib.request
from typing import Iterator, Optional, Tuple

import pytest

from brokerproc import BrokerProcess, start_broker, wait_for_listening_port
from testdata import BINARY_VALUE, MOUNT, SECRETS_YAML, TOKEN, WRONG_TOKEN

AGENT_TOKEN = "py-test-FAKE-ssrf-token"


class HttpBroker:
    def __init__(self, process: BrokerProcess) -> None:
        self.process = process
        port = lambda marker: wait_for_listening_port(process.log, marker, process.process, 60.0, "the broker")  # noqa: E731
        self.http1 = f"http://127.0.0.1:{port('HTTP/1.1 JSON API listening on')}"
        self.agent = f"http://127.0.0.1:{port('AWS Secrets Manager Agent drop-in listening on')}"
        self.dapr = f"http://127.0.0.1:{port('Dapr secrets API drop-in listening on')}"


@pytest.fixture(scope="module")
def http_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpBroker]:
    root = tmp_path_factory.mktemp("http-broker")
    secrets_file = root / "secrets.yaml"
    secrets_file.write_text(SECRETS_YAML, encoding="utf-8")
    process = start_broker(
        content_root=root / "content",
        mounts=[{"Prefix": MOUNT, "Type": "local", "File": str(secrets_file), "Watch": "false"}],
        tokens={"py-test": TOKEN},
        extra_env={
            "Broker__Http__Urls": "http://127.0.0.1:0",
            "Broker__AwsAgent__Enabled": "true",
            "Broker__AwsAgent__Urls": "http://127.0.0.1:0",
            "Broker__AwsAgent__Token": AGENT_TOKEN,
            "Broker__AwsAgent__MountPrefix": f"{MOUNT}/ml",
            "Broker__AwsAgent__Identity__Subject": "py-test",
            "Broker__Dapr__Enabled": "true",
            "Broker__Dapr__Urls": "http://127.0.0.1:0",
            "Broker__Dapr__Stores__ml": f"{MOUNT}/ml",
            "Broker__Dapr__Identity__Subject": "py-test",
        },
    )
    try:
        yield HttpBroker(process)
    finally:
        process.stop()


def get(url: str, headers: Optional[dict] = None) -> Tuple[int, str, bytes]:
    """GET with urllib; returns status, the HTTP version the server answered with, and the body."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, f"HTTP/{response.version / 10:.1f}", response.read()
    except urllib.error.HTTPError as error:
        return error.code, "", error.read()


def test_a_secret_is_read_as_json_over_http_1_1(http_broker: HttpBroker) -> None:
    status, version, body = get(f"{http_broker.http1}/v1/secrets/{MOUNT}/ml/model-registry?version=1",
                                {"Authorization": f"Bearer {TOKEN}"})

    assert (status, version) == (200, "HTTP/1.1")
    secret = json.loads(body)["secret"]
    assert secret["path"] == f"{MOUNT}/ml/model-registry"
    assert secret["version"] == "1"
    assert secret["data"] == {"token": "FAKE-registry-token-v1"}


def test_binary_data_is_base64(http_broker: HttpBroker) -> None:
    _, _, body = get(f"{http_broker.http1}/v1/secrets/{MOUNT}/certs/ca", {"Authorization": f"Bearer {TOKEN}"})

    assert base64.b64decode(json.loads(body)["secret"]["binaryData"]) == BINARY_VALUE


def test_refusals_are_google_rpc_status_json_with_grpcs_http_status(http_broker: HttpBroker) -> None:
    unauthenticated = get(f"{http_broker.http1}/v1/secrets/{MOUNT}/ml/training-db", {"Authorization": f"Bearer {WRONG_TOKEN}"})
    denied = get(f"{http_broker.http1}/v1/secrets/{MOUNT}/restricted/x", {"Authorization": f"Bearer {TOKEN}"})
    missing = get(f"{http_broker.http1}/v1/secrets/{MOUNT}/ml/none", {"Authorization": f"Bearer {TOKEN}"})

    assert (unauthenticated[0], json.loads(unauthenticated[2])["code"]) == (401, 16)
    assert (denied[0], json.loads(denied[2])["code"]) == (403, 7)
    assert (missing[0], json.loads(missing[2])["code"]) == (404, 5)


def test_batch_get_and_list(http_broker: HttpBroker) -> None:
    connection = http.client.HTTPConnection(http_broker.http1.removeprefix("http://"), timeout=30)
    try:
        connection.request("POST", "/v1/secrets:batchGet", json.dumps({"paths": [f"{MOUNT}/ml/training-db", f"{MOUNT}/restricted/x"]}),
                           {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        response = connection.getresponse()
        results = json.loads(response.read())["results"]
    finally:
        connection.close()
    _, _, listing = get(f"{http_broker.http1}/v1/secrets:list?prefix={MOUNT}/ml", {"Authorization": f"Bearer {TOKEN}"})

    assert results[0]["secret"]["data"]["username"] == "FAKE_trainer"
    assert results[1]["error"]["code"] == 7
    assert [s["path"] for s in json.loads(listing)["secrets"]] == [
        f"{MOUNT}/ml/checkpoint-bucket", f"{MOUNT}/ml/model-registry", f"{MOUNT}/ml/training-db"]


def test_the_aws_agent_example_reads_a_secret(http_broker: HttpBroker) -> None:
    # The agent README's Python example: GET /secretsmanager/get?secretId=... with the SSRF token header.
    status, _, body = get(f"{http_broker.agent}/secretsmanager/get?secretId=training-db",
                          {"X-Aws-Parameters-Secrets-Token": AGENT_TOKEN})
    refused = get(f"{http_broker.agent}/secretsmanager/get?secretId=training-db")

    assert status == 200
    answer = json.loads(body)
    assert answer["Name"] == "training-db"
    assert json.loads(answer["SecretString"])["password"] == "FAKE-password-not-real"
    assert refused[0] == 403 and refused[2] == b"Bad Token"


def test_the_dapr_secrets_api_reads_a_secret_and_the_bulk(http_broker: HttpBroker) -> None:
    status, _, body = get(f"{http_broker.dapr}/v1.0/secrets/ml/model-registry?metadata.version_id=2")
    _, _, bulk = get(f"{http_broker.dapr}/v1.0/secrets/ml/bulk")
    unknown = get(f"{http_broker.dapr}/v1.0/secrets/nope/x")

    assert (status, json.loads(body)) == (200, {"token": "FAKE-registry-token-v2"})
    assert sorted(json.loads(bulk)) == ["checkpoint-bucket", "model-registry", "training-db"]
    assert unknown[0] == 401 and json.loads(unknown[2])["errorCode"] == "ERR_SECRET_STORE_NOT_FOUND"
