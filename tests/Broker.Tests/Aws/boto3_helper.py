"""boto3 side of the aws-sm tests: one JSON command in argv[1], one JSON answer on stdout.

Talks only to the moto server named by MOTO_URL (loopback). Blobs travel base64-encoded both ways,
so the C# side can compare bytes exactly. On an AWS error it prints the error code on stderr and
exits with 3.
"""
import base64
import json
import os
import sys

import boto3
from botocore.exceptions import ClientError


def client():
    return boto3.client(
        "secretsmanager",
        endpoint_url=os.environ["MOTO_URL"],
        region_name=os.environ.get("MOTO_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("MOTO_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("MOTO_SECRET_ACCESS_KEY", "testing"),
    )


def value_args(command):
    if "binary_b64" in command:
        return {"SecretBinary": base64.b64decode(command["binary_b64"])}
    return {"SecretString": command["string"]}


class _Captured(Exception):
    pass


def _capture_url(request, **kwargs):
    raise _Captured(request.url)


def resolve_endpoints(cases):
    """The URL botocore sends ListSecrets to, for each case: its endpoint rule set over its partitions, with
    the case's region, use_fips_endpoint / use_dualstack_endpoint, endpoint_url and environment variables
    (AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL, AWS_USE_FIPS_ENDPOINT, ...). Nothing is sent: the
    request is stopped in before-send."""
    from botocore.config import Config

    results = []
    base_environment = dict(os.environ)
    for case in cases:
        os.environ.clear()
        os.environ.update(base_environment)
        for name in list(os.environ):
            if name.startswith("AWS_"):
                del os.environ[name]
        os.environ["AWS_CONFIG_FILE"] = "/nonexistent/config"
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/credentials"
        os.environ.update(case.get("env", {}))
        try:
            session = boto3.session.Session(aws_access_key_id="AKIDFAKE", aws_secret_access_key="FAKE", region_name=case["region"])
            flags = {key: case[name] for key, name in (("use_fips_endpoint", "fips"), ("use_dualstack_endpoint", "dualstack")) if name in case}
            config = Config(retries={"max_attempts": 1}, **flags)
            sm = session.client("secretsmanager", config=config, endpoint_url=case.get("endpoint_url"))
            sm.meta.events.register("before-send", _capture_url)
            sm.list_secrets(MaxResults=1)
            results.append({"error": "the request was not stopped"})
        except _Captured as captured:
            results.append({"url": captured.args[0]})
        except Exception as error:  # botocore's own refusal: the test decides what it means
            results.append({"error": type(error).__name__})
    os.environ.clear()
    os.environ.update(base_environment)
    return results


def _empty_zip():
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


def play_rotation_function(sm, name, new_string, timeout):
    """What AWS's rotation function does once Secrets Manager invoked it for the version it staged AWSPENDING
    (aws-samples/aws-secrets-manager-rotation-lambdas, SecretsManagerRotationTemplate/lambda_function.py):
    createSecret puts the new value with ClientRequestToken=token and VersionStages=[AWSPENDING]; setSecret and
    testSecret act on the protected service (none here); finishSecret moves AWSCURRENT to the token's version,
    RemoveFromVersionId the version that held it. moto runs no function code, so the test plays these steps; it
    waits (polling DescribeSecret) for the version RotateSecret staged, as the function only runs after that."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        stages = sm.describe_secret(SecretId=name).get("VersionIdsToStages", {})
        token = next((v for v, labels in stages.items() if "AWSPENDING" in labels and "AWSCURRENT" not in labels), None)
        if token is not None:
            break
        if time.monotonic() > deadline:
            raise SystemExit("no version was staged AWSPENDING")
        time.sleep(0.05)
    current = next(v for v, labels in stages.items() if "AWSCURRENT" in labels)
    sm.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString=new_string, VersionStages=["AWSPENDING"])
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current)
    return {"VersionId": token, "PreviousVersionId": current}


def main():
    command = json.loads(sys.argv[1])
    op = command["op"]
    if op == "resolve_endpoints":
        json.dump({"Results": resolve_endpoints(command["cases"])}, sys.stdout)
        return
    sm = client()
    if op == "create":
        response = sm.create_secret(Name=command["name"], **value_args(command))
        result = {"VersionId": response["VersionId"]}
    elif op == "create_many":
        for name in command["names"]:
            sm.create_secret(Name=name, SecretString=command["string"])
        result = {"Created": len(command["names"])}
    elif op == "put":
        response = sm.put_secret_value(SecretId=command["name"], **value_args(command))
        result = {"VersionId": response["VersionId"], "VersionStages": response["VersionStages"]}
    elif op == "get":
        args = {"SecretId": command["name"]}
        if "version" in command:
            args["VersionId"] = command["version"]
        if "stage" in command:
            args["VersionStage"] = command["stage"]
        response = sm.get_secret_value(**args)
        result = {"VersionId": response["VersionId"], "VersionStages": response["VersionStages"]}
        if "SecretString" in response:
            result["SecretStringB64"] = base64.b64encode(response["SecretString"].encode("utf-8")).decode("ascii")
        if "SecretBinary" in response:
            result["SecretBinaryB64"] = base64.b64encode(response["SecretBinary"]).decode("ascii")
    elif op == "setup_iam_reader":
        # An IAM user allowed to read secrets but not to list them; moto checks both once auth is on.
        iam = boto3.client(
            "iam",
            endpoint_url=os.environ["MOTO_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        iam.create_user(UserName=command["user"])
        iam.put_user_policy(
            UserName=command["user"],
            PolicyName="read-secrets",
            PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue", "secretsmanager:DescribeSecret"],
                    "Resource": "*",
                }],
            }),
        )
        key = iam.create_access_key(UserName=command["user"])["AccessKey"]
        result = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
        # A role with the same permissions, assumed through STS: temporary keys with a session token.
        role = iam.create_role(
            RoleName=command["user"] + "-role",
            AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
            }),
        )["Role"]
        iam.put_role_policy(
            RoleName=command["user"] + "-role",
            PolicyName="read-secrets",
            PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": "*"}],
            }),
        )
        sts = boto3.client(
            "sts",
            endpoint_url=os.environ["MOTO_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        temporary = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="broker-test")["Credentials"]
        result["SessionAccessKeyId"] = temporary["AccessKeyId"]
        result["SessionSecretAccessKey"] = temporary["SecretAccessKey"]
        result["SessionToken"] = temporary["SessionToken"]
    elif op == "versions":
        # moto lists every version, deprecated (unlabelled) ones included.
        response = sm.list_secret_version_ids(SecretId=command["name"], IncludeDeprecated=True)
        result = {"Versions": [{"VersionId": v["VersionId"], "VersionStages": v.get("VersionStages", [])} for v in response["Versions"]]}
    elif op == "setup_iam_users":
        # IAM users whose only permissions are the given actions (on every resource), for checking that a
        # documented policy is enough; moto enforces them once authentication is switched on.
        iam = boto3.client(
            "iam",
            endpoint_url=os.environ["MOTO_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        result = {}
        for user in command["users"]:
            iam.create_user(UserName=user["user"])
            if user["actions"]:
                iam.put_user_policy(
                    UserName=user["user"],
                    PolicyName="documented",
                    PolicyDocument=json.dumps({
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": user["actions"], "Resource": "*"}],
                    }),
                )
            key = iam.create_access_key(UserName=user["user"])["AccessKey"]
            result[user["user"]] = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    elif op == "setup_rotation_lambda":
        # A rotation function registered in moto's Lambda (moto_rotation_server.py: the simple backend, which runs no
        # code); its execution role must exist in IAM for CreateFunction.
        iam = boto3.client(
            "iam",
            endpoint_url=os.environ["MOTO_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        role = iam.create_role(
            RoleName=command["function"] + "-role",
            AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
            }),
        )["Role"]
        lam = boto3.client(
            "lambda",
            endpoint_url=os.environ["MOTO_URL"],
            region_name=os.environ.get("MOTO_REGION", "us-east-1"),
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        function = lam.create_function(
            FunctionName=command["function"],
            Runtime="python3.11",
            Role=role["Arn"],
            Handler="lambda_function.lambda_handler",
            Code={"ZipFile": _empty_zip()},
        )
        result = {"FunctionArn": function["FunctionArn"]}
    elif op == "aws_rotation":
        # AWS rotating on its own (its schedule, the console): RotateSecret with the function, then the function's steps.
        sm.rotate_secret(SecretId=command["name"], RotationLambdaARN=command["lambda_arn"], RotationRules={"AutomaticallyAfterDays": 30})
        result = play_rotation_function(sm, command["name"], command["string"], command.get("timeout", 60))
    elif op == "play_rotation_function":
        result = play_rotation_function(sm, command["name"], command["string"], command.get("timeout", 60))
    elif op == "describe":
        response = sm.describe_secret(SecretId=command["name"])
        result = {"VersionIdsToStages": response.get("VersionIdsToStages", {})}
    else:
        raise SystemExit(f"unknown op {op}")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    try:
        main()
    except ClientError as error:
        print(error.response["Error"]["Code"], file=sys.stderr)
        sys.exit(3)
