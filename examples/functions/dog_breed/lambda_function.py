"""The dog-breed project's function, as written for AWS Lambda, unchanged.

It takes ``{"url": "<image url>"}``, sends the event as the body of an InvokeEndpoint
call (the endpoint's model server fetches the image) and returns the scores. On kennel
the environment points ``sagemaker-runtime`` at the gateway and carries the execution
role's temporary credentials, so the same code runs without a change.
"""

import json
import os

import boto3

ENDPOINT_NAME = os.environ.get("ENDPOINT_NAME", "dog-breeds")
runtime = boto3.client("sagemaker-runtime")


def lambda_handler(event, context):
    response = runtime.invoke_endpoint(
        EndpointName=ENDPOINT_NAME,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(event),
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
