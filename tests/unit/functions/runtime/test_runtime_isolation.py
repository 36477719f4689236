"""What a function sees of its environment: variables, credentials, context, cwd."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.unit.functions.runtime._runtime_support import (
    ACCOUNT,
    CREDENTIALS,
    GATEWAY,
    REGION,
    invoke_meta,
    make_spec,
    run,
    spawn_and_invoke,
    write_code,
)
from tests.unit.functions.runtime.conftest import LEAKY_HOST_VARIABLES

from kennel.functions._envclient import spawn

DUMP_ENV = """
import os, sys

def handler(event, context):
    return {"env": dict(os.environ), "cwd": os.getcwd(), "path0": sys.path[0]}
"""


def test_reserved_user_and_credential_variables(template: tuple[str, int], tmp_path: Path) -> None:
    user = {"GREETING": "hello", "AWS_REGION": "user-cannot-override", "TZ": "Europe/Paris"}
    spec = make_spec(
        write_code(tmp_path, {"lambda_function.py": DUMP_ENV}),
        name="env-fn",
        memory_mb=512,
        environment=user,
    )
    _, result = run(spawn_and_invoke(template, spec))
    seen = json.loads(result.payload)
    env = seen["env"]
    code_dir = env["LAMBDA_TASK_ROOT"]
    assert env["GREETING"] == "hello"
    expected = {
        "_HANDLER": "lambda_function.handler",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_FUNCTION_NAME": "env-fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/env-fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": spec["log_stream"],
        "AWS_ACCESS_KEY_ID": CREDENTIALS["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret_access_key"],
        "AWS_SESSION_TOKEN": CREDENTIALS["session_token"],
        "AWS_LAMBDA_RUNTIME_API": GATEWAY.split("://")[1],
        "AWS_ENDPOINT_URL": GATEWAY,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": GATEWAY,
        "AWS_ENDPOINT_URL_LAMBDA": GATEWAY,
        "AWS_EC2_METADATA_DISABLED": "true",
        "TZ": ":UTC",
    }
    assert {key: env.get(key) for key in expected} == expected
    assert Path(code_dir).name == spec["code_sha256"]
    assert seen["cwd"] == code_dir and seen["path0"] == code_dir
    assert Path(env["LAMBDA_RUNTIME_DIR"], "_environment.py").is_file()
    assert not Path(env["AWS_CONFIG_FILE"]).exists()
    assert not Path(env["AWS_SHARED_CREDENTIALS_FILE"]).exists()


def test_host_environment_does_not_leak(template: tuple[str, int], tmp_path: Path) -> None:
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": DUMP_ENV}))
    spec["credentials"] = None  # even without credentials of its own, none of the host's
    _, result = run(spawn_and_invoke(template, spec))
    env = json.loads(result.payload)["env"]
    assert not [key for key in env if key.startswith(("KENNEL_", "PYTHON", "VIRTUAL_ENV"))]
    for key, value in LEAKY_HOST_VARIABLES.items():
        assert env.get(key) != value, key
    assert "AWS_PROFILE" not in env
    assert "AWS_ACCESS_KEY_ID" not in env


def test_host_working_directory_is_not_importable(
    template: tuple[str, int], tmp_path: Path
) -> None:
    """`python -m` puts the template's cwd on sys.path; functions must not inherit it."""
    code = (
        "import os, sys\n\ndef handler(e, c):\n    return [p for p in sys.path if p in ('', e)]\n"
    )
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))
    _, result = run(spawn_and_invoke(template, spec, json.dumps(str(Path.cwd())).encode()))
    assert json.loads(result.payload) == []


CONTEXT = """
import time

def handler(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    second = context.get_remaining_time_in_millis()
    cc = context.client_context
    return {
        "str": str(context),
        "attrs": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
        },
        "identity": [
            context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id
        ],
        "client_context": None if cc is None else {
            "custom": cc.custom, "env": cc.env, "app_title": cc.client.app_title, "str": str(cc)},
        "remaining": [first, second],
    }
"""


def test_context_object_matches_aws(template: tuple[str, int], tmp_path: Path) -> None:
    spec = make_spec(
        write_code(tmp_path, {"lambda_function.py": CONTEXT}), name="ctx-fn", timeout_s=5
    )
    qualified = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ctx-fn:prod"
    client_context = base64.b64encode(
        json.dumps({"custom": {"k": "v"}, "env": {"e": 1}, "client": {"app_title": "app"}}).encode()
    ).decode()

    async def scenario() -> tuple[dict[str, object], dict[str, object], str]:
        client = await spawn(*template, spec, timeout=30)
        plain = invoke_meta(spec, "req-plain")
        with_cc = invoke_meta(
            spec, "req-cc", invoked_function_arn=qualified, client_context=client_context
        )
        a = json.loads((await client.invoke(plain, b"{}")).payload)
        b = json.loads((await client.invoke(with_cc, b"{}")).payload)
        await client.close()
        return a, b, str(spec["log_stream"])

    plain, with_cc, stream = run(scenario())
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ctx-fn"
    assert plain["str"] == (
        f"LambdaContext([aws_request_id=req-plain,log_group_name=/aws/lambda/ctx-fn,"
        f"log_stream_name={stream},function_name=ctx-fn,memory_limit_in_mb=128,"
        f"function_version=$LATEST,invoked_function_arn={arn},client_context=None,"
        "identity=CognitoIdentity([cognito_identity_id=None,cognito_identity_pool_id=None])])"
    )
    assert plain["attrs"] == {
        "function_name": "ctx-fn",
        "function_version": "$LATEST",
        "invoked_function_arn": arn,
        "memory_limit_in_mb": "128",  # a string on AWS too: it comes from the environment
        "aws_request_id": "req-plain",
        "log_group_name": "/aws/lambda/ctx-fn",
        "log_stream_name": stream,
    }
    assert plain["identity"] == [None, None]
    assert plain["client_context"] is None
    first, second = plain["remaining"]  # type: ignore[misc]
    assert 4000 < first <= 5000
    assert 40 <= first - second < 1000
    assert with_cc["attrs"]["invoked_function_arn"] == qualified  # type: ignore[index]
    assert with_cc["client_context"] == {
        "custom": {"k": "v"},
        "env": {"e": 1},
        "app_title": "app",
        "str": "ClientContext([custom={'k': 'v'},env={'e': 1},client=Client([installation_id="
        "None,app_title=app,app_version_name=None,app_version_code=None,app_package_name=None])])",
    }
