"""Seeds moto's Secrets Manager with the compose demo's secrets. Every value is fake."""
import json
import os
import time

import boto3

client = boto3.client(
    "secretsmanager",
    endpoint_url=os.environ.get("MOTO_URL", "http://moto:5000"),
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)

for attempt in range(60):
    try:
        client.list_secrets()
        break
    except Exception:  # moto is still starting
        time.sleep(1)

SECRETS = {
    "prod/ml-training/postgres-credentials": {"username": "trainer", "password": "FAKE-compose-aws-pg"},
    "prod/inference/api-key": {"key": "FAKE-compose-aws-api-key"},
}
for name, value in SECRETS.items():
    try:
        client.create_secret(Name=name, SecretString=json.dumps(value))
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId=name, SecretString=json.dumps(value))
print("moto seeded")
