"""The dog-breed project's function, as written for AWS Lambda, plus function URLs.

It takes ``{"url": "<image url>"}``, sends it as the body of an InvokeEndpoint call (the
endpoint's model server fetches the image) and returns the scores. Called through a
function URL, the event is the HTTP request (payload format 2.0) and ``{"url": ...}`` is
its body; the answer's ``statusCode``/``headers``/``body`` become the HTTP response. On
kennel the environment points ``sagemaker-runtime`` at the gateway and carries the
execution role's temporary credentials, so the same code runs without a change.
"""

import base64
import json
import os

import boto3

ENDPOINT_NAME = os.environ.get("ENDPOINT_NAME", "dog-breeds")
runtime = boto3.client("sagemaker-runtime")


def image_request(event):
    """The ``{"url": ...}`` request: the event itself, or a function URL request's body."""
    if event.get("version") == "2.0" and "requestContext" in event:
        body = event.get("body") or "{}"
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
        return json.loads(body)
    return event


def lambda_handler(event, context):
    response = runtime.invoke_endpoint(
        EndpointName=ENDPOINT_NAME,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(image_request(event)),
    )
    scores = json.loads(response["Body"].read().decode("utf-8"))
    return {
        "statusCode": 200,
        "headers": {
            "Content-Type": "application/json",
            "Access-Control-Allow-Origin": "*",
        },
        "type-result": str(type(scores)),
        "Content-Type-In": str(context),
        "body": json.dumps(scores),
    }
