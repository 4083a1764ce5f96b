"""Reads a secret from an AWS Secrets Manager Agent endpoint as the agent's documentation shows, and parses the answer with botocore.

    python3 agent_client.py URL TOKEN SECRET_ID [VERSION_STAGE]

The request is the agent README's example (urllib instead of requests): GET /secretsmanager/get?secretId=... with the
X-Aws-Parameters-Secrets-Token header. The answer goes through botocore's JSON parser with the GetSecretValue output shape
of botocore's own service model (botocore/data/secretsmanager/.../service-2.json), as boto3 would parse Secrets Manager's
answer, so a field of the wrong type or name fails here. Prints the parsed answer (errors as botocore's Error dict) as JSON.
"""
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import botocore.parsers
import botocore.session


def main():
    url, token, secret_id = sys.argv[1:4]
    query = {"secretId": secret_id}
    if len(sys.argv) > 4:
        query["versionStage"] = sys.argv[4]
    request = urllib.request.Request(f"{url.rstrip('/')}/secretsmanager/get?{urllib.parse.urlencode(query)}",
                                     headers={"X-Aws-Parameters-Secrets-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, body = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, dict(error.headers), error.read()

    model = botocore.session.get_session().get_service_model("secretsmanager")
    shape = model.operation_model("GetSecretValue").output_shape
    parsed = botocore.parsers.create_parser("json").parse({"status_code": status, "headers": headers, "body": body}, shape)
    parsed.pop("ResponseMetadata", None)
    if "SecretBinary" in parsed:
        parsed["SecretBinary"] = base64.b64encode(parsed["SecretBinary"]).decode()
    if "CreatedDate" in parsed:
        parsed["CreatedDate"] = parsed["CreatedDate"].isoformat()
    print(json.dumps({"status": status, "parsed": parsed, "raw": json.loads(body) if body.startswith(b"{") else body.decode()}))


if __name__ == "__main__":
    main()
