"""kennel's built-in managed policies, named and shaped like AWS's own.

Their ARNs are AWS's (``arn:aws:iam::aws:policy/...``), so a policy or a stack file
written for AWS attaches the same names here. Each document is kennel's cut of the
AWS policy: the same intent, restricted to the services kennel has, plus kennel's own
data-set actions where AWS would grant S3 access.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BuiltinPolicy:
    name: str
    path: str
    description: str
    document: dict[str, Any]

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::aws:policy{self.path}{self.name}"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _pass_role_to(service: str) -> dict[str, Any]:
    return {
        "Sid": "PassRoleTo" + service.split(".")[0].capitalize(),
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": "*",
        "Condition": {"StringEquals": {"iam:PassedToService": service}},
    }


BUILTIN_POLICIES: tuple[BuiltinPolicy, ...] = (
    BuiltinPolicy(
        "AdministratorAccess",
        "/",
        "Provides full access to kennel services and resources.",
        _doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    ),
    BuiltinPolicy(
        "AmazonSageMakerFullAccess",
        "/",
        "Provides full access to SageMaker (training, models, endpoints), kennel data sets "
        "and uploads, job logs and metrics, and passing roles to SageMaker.",
        _doc(
            {
                "Sid": "AllowAllSageMaker",
                "Effect": "Allow",
                "Action": "sagemaker:*",
                "Resource": "*",
            },
            {
                "Sid": "AllowDataAndTelemetry",
                "Effect": "Allow",
                "Action": [
                    "kennel:*Dataset*",
                    "kennel:PutUpload",
                    "kennel:ListInstanceTypes",
                    "kennel:GetServerStatus",
                    "cloudwatch:GetMetricData",
                    "logs:GetLogEvents",
                    "application-autoscaling:*",
                ],
                "Resource": "*",
            },
            {
                "Sid": "AllowRoleLookups",
                "Effect": "Allow",
                "Action": ["iam:GetRole", "iam:ListRoles"],
                "Resource": "*",
            },
            _pass_role_to("sagemaker.amazonaws.com"),
        ),
    ),
    BuiltinPolicy(
        "AWSLambda_FullAccess",
        "/",
        "Grants full access to Lambda functions, their logs and metrics, and passing roles "
        "to Lambda.",
        _doc(
            {
                "Sid": "AllowAllLambda",
                "Effect": "Allow",
                "Action": ["lambda:*", "cloudwatch:GetMetricData", "logs:GetLogEvents"],
                "Resource": "*",
            },
            {
                "Sid": "AllowRoleLookups",
                "Effect": "Allow",
                "Action": ["iam:GetRole", "iam:ListRoles", "iam:GetPolicy", "iam:ListPolicies"],
                "Resource": "*",
            },
            _pass_role_to("lambda.amazonaws.com"),
        ),
    ),
    BuiltinPolicy(
        "AWSLambdaBasicExecutionRole",
        "/service-role/",
        "Provides write permissions to CloudWatch Logs.",
        _doc(
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ),
    ),
    BuiltinPolicy(
        "IAMUserChangePassword",
        "/",
        "Provides the ability for an IAM user to change their own password.",
        _doc(
            {
                "Effect": "Allow",
                "Action": ["iam:ChangePassword"],
                "Resource": ["arn:aws:iam::*:user/${aws:username}"],
            },
            {"Effect": "Allow", "Action": ["iam:GetAccountPasswordPolicy"], "Resource": "*"},
        ),
    ),
    BuiltinPolicy(
        "ReadOnlyAccess",
        "/",
        "Provides read-only access to kennel services and resources.",
        _doc(
            {
                "Sid": "AllowReadOnly",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:Describe*",
                    "sagemaker:List*",
                    "lambda:Get*",
                    "lambda:List*",
                    "iam:Get*",
                    "iam:List*",
                    "iam:Generate*",
                    "iam:Simulate*",
                    "kennel:Describe*",
                    "kennel:List*",
                    "kennel:Get*",
                    "application-autoscaling:Describe*",
                    "cloudwatch:Describe*",
                    "cloudwatch:Get*",
                    "cloudwatch:List*",
                    "logs:Describe*",
                    "logs:Get*",
                    "logs:FilterLogEvents",
                    "access-analyzer:List*",
                    "access-analyzer:Get*",
                    "access-analyzer:ValidatePolicy",
                ],
                "Resource": "*",
            }
        ),
    ),
)

BUILTIN_BY_ARN = {p.arn: p for p in BUILTIN_POLICIES}
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
