"""moto's server (python3 -m moto.server, same arguments) with two changes for the aws-managed rotation tests.

1. Lambda functions are moto's simple backend (config lambda.use_docker = False, as moto's own
   @mock_aws(config={"lambda": {"use_docker": False}})): invoking the rotation function runs nothing, so the
   test plays the function's steps itself with boto3, as AWS's rotation function would.
2. RotateSecret without RotationLambdaARN keeps the Lambda already configured on the secret. AWS: "If you do not
   include the configuration parameters, the operation starts a rotation with the values already stored in the
   secret" (API_RotateSecret). moto 5.2.1 and getmoto/moto main (moto/secretsmanager/models.py, rotate_secret:
   `secret.rotation_lambda_arn = rotation_lambda_arn or ""`) forget it instead and make a version without a value
   AWSCURRENT at once, which AWS never does.
3. A finished rotation may leave AWSPENDING on the AWSCURRENT version, and a later RotateSecret starts a new one. AWS
   (API_RotateSecret): "When rotation is successful, the AWSPENDING staging label might be attached to the same version
   as the AWSCURRENT version ... If the AWSPENDING staging label is present but not attached to the same version as
   AWSCURRENT, then any later invocation of RotateSecret assumes that a previous rotation request is still in progress
   and returns an error." moto's rotate_secret quotes this and then raises "Previous rotation request is still in
   progress" in exactly the finished case; here the finished rotation's AWSPENDING is dropped first, as the new rotation
   moves AWSPENDING to its own version anyway.
Nothing else of moto changes.
"""
import sys

import moto.server
from moto.core.config import default_user_config
from moto.secretsmanager.models import SecretsManagerBackend

default_user_config["lambda"] = {"use_docker": False}

_moto_rotate_secret = SecretsManagerBackend.rotate_secret


def _rotate_secret(self, secret_id, client_request_token=None, rotation_lambda_arn=None, rotation_rules=None, rotate_immediately=True):
    if self._is_valid_identifier(secret_id):
        secret = self.secrets[secret_id]
        if not rotation_lambda_arn:
            rotation_lambda_arn = getattr(secret, "rotation_lambda_arn", "") or None
        for version in getattr(secret, "versions", {}).values():
            stages = version["version_stages"]
            if "AWSPENDING" in stages and "AWSCURRENT" in stages:
                stages.remove("AWSPENDING")
    return _moto_rotate_secret(self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules, rotate_immediately)


SecretsManagerBackend.rotate_secret = _rotate_secret

if __name__ == "__main__":
    moto.server.main(sys.argv[1:])
