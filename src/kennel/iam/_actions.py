"""The actions kennel authorizes, the resource each one acts on, and its access level.

Every route of the gateway names one of these (the enumeration test checks that); the
audit, ``generate-policy`` and ``unused`` read the catalog to know what an action is.
Names and ARNs follow AWS's service authorization reference where AWS has the action;
kennel's own resources (data sets, uploads, the server's status) use the ``kennel``
service prefix and ``arn:aws:kennel:<region>:<account>:<kind>/<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Access = Literal["List", "Read", "Write", "Permissions management", "Tagging"]


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    access: Access
    resource: str
    """An ARN template with {region}, {account} and {name}, or ``*`` (no resource type)."""
    lower_name: bool = False
    """SageMaker lower-cases resource names in its ARNs."""

    @property
    def full(self) -> str:
        return f"{self.service}:{self.name}"

    def arn(self, region: str, account: str, name: str = "") -> str:
        if self.resource == "*":
            return "*"
        return self.resource.format(
            region=region, account=account, name=name.lower() if self.lower_name else name
        )


def _sm(kind: str) -> str:
    return "arn:aws:sagemaker:{region}:{account}:" + kind + "/{name}"


def _kennel(kind: str) -> str:
    return "arn:aws:kennel:{region}:{account}:" + kind + "/{name}"


def _iam(kind: str) -> str:
    return "arn:aws:iam::{account}:" + kind + "/{name}"


_LOG_GROUP = "arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/TrainingJobs"
_FUNCTION = "arn:aws:lambda:{region}:{account}:function:{name}"
"""A function; ``{name}`` is ``name`` or ``name:qualifier`` (a version or an alias)."""
_FUNCTION_LOG_GROUP = "arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{name}"
_SCALABLE_TARGET = "arn:aws:application-autoscaling:{region}:{account}:scalable-target/{name}"
"""A scalable target; ``{name}`` is its id (kennel derives it from the resource ID)."""

_CATALOG: list[tuple[str, str, Access, str]] = [
    # kennel's own resources
    ("kennel", "GetServerStatus", "Read", "*"),
    # GET /metrics: every metric kennel keeps, in Prometheus' text format
    ("kennel", "GetMetrics", "Read", "*"),
    ("kennel", "ListInstanceTypes", "List", "*"),
    ("kennel", "CreateDataset", "Write", _kennel("dataset")),
    ("kennel", "DescribeDataset", "Read", _kennel("dataset")),
    ("kennel", "ListDatasets", "List", "*"),
    ("kennel", "DeleteDataset", "Write", _kennel("dataset")),
    ("kennel", "PutUpload", "Write", _kennel("upload")),
    # Stacks: what `kennel up` made from a stack file, recorded so it resumes and `down` undoes
    ("kennel", "PutStack", "Write", _kennel("stack")),
    ("kennel", "GetStack", "Read", _kennel("stack")),
    ("kennel", "ListStacks", "List", "*"),
    ("kennel", "DeleteStack", "Write", _kennel("stack")),
    # SageMaker
    ("sagemaker", "CreateTrainingJob", "Write", _sm("training-job")),
    ("sagemaker", "DescribeTrainingJob", "Read", _sm("training-job")),
    ("sagemaker", "ListTrainingJobs", "List", "*"),
    ("sagemaker", "StopTrainingJob", "Write", _sm("training-job")),
    ("sagemaker", "CreateHyperParameterTuningJob", "Write", _sm("hyper-parameter-tuning-job")),
    ("sagemaker", "DescribeHyperParameterTuningJob", "Read", _sm("hyper-parameter-tuning-job")),
    ("sagemaker", "ListHyperParameterTuningJobs", "List", "*"),
    ("sagemaker", "StopHyperParameterTuningJob", "Write", _sm("hyper-parameter-tuning-job")),
    (
        "sagemaker",
        "ListTrainingJobsForHyperParameterTuningJob",
        "List",
        _sm("hyper-parameter-tuning-job"),
    ),
    ("sagemaker", "CreateModel", "Write", _sm("model")),
    ("sagemaker", "DescribeModel", "Read", _sm("model")),
    ("sagemaker", "ListModels", "List", "*"),
    ("sagemaker", "DeleteModel", "Write", _sm("model")),
    ("sagemaker", "CreateEndpointConfig", "Write", _sm("endpoint-config")),
    ("sagemaker", "DescribeEndpointConfig", "Read", _sm("endpoint-config")),
    ("sagemaker", "ListEndpointConfigs", "List", "*"),
    ("sagemaker", "DeleteEndpointConfig", "Write", _sm("endpoint-config")),
    ("sagemaker", "CreateEndpoint", "Write", _sm("endpoint")),
    ("sagemaker", "DescribeEndpoint", "Read", _sm("endpoint")),
    ("sagemaker", "ListEndpoints", "List", "*"),
    ("sagemaker", "UpdateEndpoint", "Write", _sm("endpoint")),
    ("sagemaker", "DeleteEndpoint", "Write", _sm("endpoint")),
    ("sagemaker", "InvokeEndpoint", "Read", _sm("endpoint")),
    # Model monitoring: an endpoint's schedule is named after the endpoint
    ("sagemaker", "CreateMonitoringSchedule", "Write", _sm("monitoring-schedule")),
    ("sagemaker", "DescribeMonitoringSchedule", "Read", _sm("monitoring-schedule")),
    ("sagemaker", "DeleteMonitoringSchedule", "Write", _sm("monitoring-schedule")),
    ("sagemaker", "ListMonitoringSchedules", "List", "*"),
    ("sagemaker", "StartMonitoringSchedule", "Write", _sm("monitoring-schedule")),
    ("sagemaker", "ListMonitoringExecutions", "List", "*"),
    ("kennel", "PutGroundTruth", "Write", _kennel("endpoint")),
    ("kennel", "CreateModelBaseline", "Write", _kennel("model")),
    ("sagemaker", "CreateNotebookInstance", "Write", _sm("notebook-instance")),
    ("sagemaker", "DescribeNotebookInstance", "Read", _sm("notebook-instance")),
    ("sagemaker", "ListNotebookInstances", "List", "*"),
    ("sagemaker", "StartNotebookInstance", "Write", _sm("notebook-instance")),
    ("sagemaker", "StopNotebookInstance", "Write", _sm("notebook-instance")),
    ("sagemaker", "DeleteNotebookInstance", "Write", _sm("notebook-instance")),
    # The running `kennel notebook` reporting its JupyterLab's state (heartbeats).
    ("sagemaker", "UpdateNotebookInstance", "Write", _sm("notebook-instance")),
    # Lambda
    ("lambda", "CreateFunction", "Write", _FUNCTION),
    ("lambda", "GetFunction", "Read", _FUNCTION),
    ("lambda", "GetFunctionConfiguration", "Read", _FUNCTION),
    ("lambda", "ListFunctions", "List", "*"),
    ("lambda", "UpdateFunctionConfiguration", "Write", _FUNCTION),
    ("lambda", "UpdateFunctionCode", "Write", _FUNCTION),
    ("lambda", "DeleteFunction", "Write", _FUNCTION),
    ("lambda", "PublishVersion", "Write", _FUNCTION),
    ("lambda", "ListVersionsByFunction", "List", _FUNCTION),
    ("lambda", "CreateAlias", "Write", _FUNCTION),
    ("lambda", "GetAlias", "Read", _FUNCTION),
    ("lambda", "ListAliases", "List", _FUNCTION),
    ("lambda", "UpdateAlias", "Write", _FUNCTION),
    ("lambda", "DeleteAlias", "Write", _FUNCTION),
    ("lambda", "PutFunctionConcurrency", "Write", _FUNCTION),
    ("lambda", "GetFunctionConcurrency", "Read", _FUNCTION),
    ("lambda", "DeleteFunctionConcurrency", "Write", _FUNCTION),
    ("lambda", "PutProvisionedConcurrencyConfig", "Write", _FUNCTION),
    ("lambda", "GetProvisionedConcurrencyConfig", "Read", _FUNCTION),
    ("lambda", "ListProvisionedConcurrencyConfigs", "List", _FUNCTION),
    ("lambda", "DeleteProvisionedConcurrencyConfig", "Write", _FUNCTION),
    ("lambda", "GetAccountSettings", "List", "*"),
    ("lambda", "CreateFunctionUrlConfig", "Write", _FUNCTION),
    ("lambda", "GetFunctionUrlConfig", "Read", _FUNCTION),
    ("lambda", "UpdateFunctionUrlConfig", "Write", _FUNCTION),
    ("lambda", "DeleteFunctionUrlConfig", "Write", _FUNCTION),
    ("lambda", "ListFunctionUrlConfigs", "List", _FUNCTION),
    ("lambda", "AddPermission", "Permissions management", _FUNCTION),
    ("lambda", "RemovePermission", "Permissions management", _FUNCTION),
    ("lambda", "GetPolicy", "Read", _FUNCTION),
    ("lambda", "PutFunctionEventInvokeConfig", "Write", _FUNCTION),
    ("lambda", "GetFunctionEventInvokeConfig", "Read", _FUNCTION),
    ("lambda", "UpdateFunctionEventInvokeConfig", "Write", _FUNCTION),
    ("lambda", "DeleteFunctionEventInvokeConfig", "Write", _FUNCTION),
    ("lambda", "ListFunctionEventInvokeConfigs", "List", _FUNCTION),
    ("lambda", "ListTags", "Read", _FUNCTION),
    ("lambda", "TagResource", "Write", _FUNCTION),
    ("lambda", "UntagResource", "Write", _FUNCTION),
    ("lambda", "InvokeFunction", "Write", _FUNCTION),
    ("lambda", "InvokeFunctionUrl", "Write", _FUNCTION),
    ("kennel", "ListFunctionEvents", "List", _FUNCTION),
    # Application Auto Scaling (endpoint variants): AWS gives the Describe* actions no
    # resource type, so they take "*".
    ("application-autoscaling", "RegisterScalableTarget", "Write", _SCALABLE_TARGET),
    ("application-autoscaling", "DescribeScalableTargets", "Read", "*"),
    ("application-autoscaling", "DeregisterScalableTarget", "Write", _SCALABLE_TARGET),
    ("application-autoscaling", "PutScalingPolicy", "Write", _SCALABLE_TARGET),
    ("application-autoscaling", "DescribeScalingPolicies", "Read", "*"),
    ("application-autoscaling", "DeleteScalingPolicy", "Write", _SCALABLE_TARGET),
    ("application-autoscaling", "DescribeScalingActivities", "Read", "*"),
    ("application-autoscaling", "PutScheduledAction", "Write", _SCALABLE_TARGET),
    ("application-autoscaling", "DescribeScheduledActions", "Read", "*"),
    ("application-autoscaling", "DeleteScheduledAction", "Write", _SCALABLE_TARGET),
    ("application-autoscaling", "ListTagsForResource", "Read", _SCALABLE_TARGET),
    ("application-autoscaling", "TagResource", "Tagging", _SCALABLE_TARGET),
    ("application-autoscaling", "UntagResource", "Tagging", _SCALABLE_TARGET),
    # CloudWatch (metrics and logs of jobs, endpoints and functions)
    ("logs", "FilterLogEvents", "Read", _FUNCTION_LOG_GROUP),
    ("cloudwatch", "GetMetricData", "Read", "*"),
    ("logs", "GetLogEvents", "Read", _LOG_GROUP),
    # IAM
    ("iam", "CreateUser", "Write", _iam("user")),
    ("iam", "GetUser", "Read", _iam("user")),
    ("iam", "ListUsers", "List", "*"),
    ("iam", "DeleteUser", "Write", _iam("user")),
    ("iam", "CreateAccessKey", "Write", _iam("user")),
    ("iam", "ListAccessKeys", "List", _iam("user")),
    ("iam", "UpdateAccessKey", "Write", _iam("user")),
    ("iam", "DeleteAccessKey", "Write", _iam("user")),
    ("iam", "GetAccessKeyLastUsed", "Read", _iam("user")),
    ("iam", "CreateLoginProfile", "Write", _iam("user")),
    ("iam", "GetLoginProfile", "Read", _iam("user")),
    ("iam", "UpdateLoginProfile", "Write", _iam("user")),
    ("iam", "DeleteLoginProfile", "Write", _iam("user")),
    # A user's own console password (AWS allows it on the caller's own user only)
    ("iam", "ChangePassword", "Write", _iam("user")),
    # The account's password policy (AllowUsersToChangePassword lets every user read it)
    ("iam", "UpdateAccountPasswordPolicy", "Write", "*"),
    ("iam", "GetAccountPasswordPolicy", "Read", "*"),
    ("iam", "DeleteAccountPasswordPolicy", "Write", "*"),
    ("iam", "CreateGroup", "Write", _iam("group")),
    ("iam", "GetGroup", "Read", _iam("group")),
    ("iam", "ListGroups", "List", "*"),
    ("iam", "DeleteGroup", "Write", _iam("group")),
    ("iam", "AddUserToGroup", "Write", _iam("group")),
    ("iam", "RemoveUserFromGroup", "Write", _iam("group")),
    ("iam", "ListGroupsForUser", "List", _iam("user")),
    ("iam", "CreateRole", "Write", _iam("role")),
    ("iam", "GetRole", "Read", _iam("role")),
    ("iam", "ListRoles", "List", "*"),
    ("iam", "DeleteRole", "Write", _iam("role")),
    ("iam", "UpdateAssumeRolePolicy", "Permissions management", _iam("role")),
    ("iam", "PassRole", "Write", _iam("role")),
    ("iam", "CreatePolicy", "Permissions management", _iam("policy")),
    ("iam", "GetPolicy", "Read", _iam("policy")),
    ("iam", "GetPolicyVersion", "Read", _iam("policy")),
    ("iam", "ListPolicies", "List", "*"),
    ("iam", "ListPolicyVersions", "List", _iam("policy")),
    ("iam", "CreatePolicyVersion", "Permissions management", _iam("policy")),
    ("iam", "DeletePolicy", "Permissions management", _iam("policy")),
    ("iam", "ListEntitiesForPolicy", "List", _iam("policy")),
    ("iam", "AttachUserPolicy", "Permissions management", _iam("user")),
    ("iam", "DetachUserPolicy", "Permissions management", _iam("user")),
    ("iam", "ListAttachedUserPolicies", "List", _iam("user")),
    ("iam", "PutUserPolicy", "Permissions management", _iam("user")),
    ("iam", "GetUserPolicy", "Read", _iam("user")),
    ("iam", "DeleteUserPolicy", "Permissions management", _iam("user")),
    ("iam", "ListUserPolicies", "List", _iam("user")),
    ("iam", "AttachGroupPolicy", "Permissions management", _iam("group")),
    ("iam", "DetachGroupPolicy", "Permissions management", _iam("group")),
    ("iam", "ListAttachedGroupPolicies", "List", _iam("group")),
    ("iam", "PutGroupPolicy", "Permissions management", _iam("group")),
    ("iam", "GetGroupPolicy", "Read", _iam("group")),
    ("iam", "DeleteGroupPolicy", "Permissions management", _iam("group")),
    ("iam", "ListGroupPolicies", "List", _iam("group")),
    ("iam", "AttachRolePolicy", "Permissions management", _iam("role")),
    ("iam", "DetachRolePolicy", "Permissions management", _iam("role")),
    ("iam", "ListAttachedRolePolicies", "List", _iam("role")),
    ("iam", "PutRolePolicy", "Permissions management", _iam("role")),
    ("iam", "GetRolePolicy", "Read", _iam("role")),
    ("iam", "DeleteRolePolicy", "Permissions management", _iam("role")),
    ("iam", "ListRolePolicies", "List", _iam("role")),
    ("iam", "PutUserPermissionsBoundary", "Permissions management", _iam("user")),
    ("iam", "DeleteUserPermissionsBoundary", "Permissions management", _iam("user")),
    ("iam", "PutRolePermissionsBoundary", "Permissions management", _iam("role")),
    ("iam", "DeleteRolePermissionsBoundary", "Permissions management", _iam("role")),
    ("iam", "CreateVirtualMFADevice", "Write", _iam("mfa")),
    ("iam", "EnableMFADevice", "Write", _iam("user")),
    ("iam", "DeactivateMFADevice", "Write", _iam("user")),
    ("iam", "ListMFADevices", "List", _iam("user")),
    ("iam", "ListVirtualMFADevices", "List", "*"),
    ("iam", "DeleteVirtualMFADevice", "Write", _iam("mfa")),
    ("iam", "SimulatePrincipalPolicy", "Read", "*"),
    ("iam", "GenerateServiceLastAccessedDetails", "Read", "*"),
    # STS and the access analyzer (kennel's explain, generate-policy and audit)
    ("sts", "AssumeRole", "Write", _iam("role")),
    ("sts", "GetSessionToken", "Read", "*"),
    ("sts", "GetCallerIdentity", "Read", "*"),
    ("sts", "DecodeAuthorizationMessage", "Read", "*"),
    ("cloudtrail", "LookupEvents", "Read", "*"),
    ("access-analyzer", "StartPolicyGeneration", "Read", "*"),
    ("access-analyzer", "ListFindings", "Read", "*"),
    # Policy linting without saving (the console's policy editor validates with it)
    ("access-analyzer", "ValidatePolicy", "Read", "*"),
]

ACTIONS: dict[str, Action] = {
    f"{service}:{name}": Action(service, name, access, resource, lower_name=service == "sagemaker")
    for service, name, access, resource in _CATALOG
}

PERMISSIONS_ACTIONS = frozenset(
    a for a, info in ACTIONS.items() if info.access == "Permissions management"
)
"""Actions that change who may do what (an identity able to run these on itself can escalate)."""

UNAUTHORIZED_ACTIONS = frozenset({"sts:GetCallerIdentity", "sts:GetSessionToken"})
"""Actions AWS answers for any valid caller, whatever the policies say (logged, not denied)."""


def action(full_name: str) -> Action:
    """The catalog entry for ``service:Name``; KeyError names the unknown action."""
    try:
        return ACTIONS[full_name]
    except KeyError:
        raise KeyError(f"{full_name} is not in kennel's action catalog (iam/_actions.py)") from None
