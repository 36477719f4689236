"""The public surface is deliberate: this list changes only on purpose."""

import kennel


def test_public_names() -> None:
    assert sorted(kennel.__all__) == sorted(
        [
            "DEFAULT_PORT",
            "AccessDeniedError",
            "AuthError",
            "ConflictError",
            "InternalError",
            "InvalidSignatureError",
            "KennelError",
            "MissingAuthenticationTokenError",
            "NotFoundError",
            "PayloadTooLargeError",
            "ServiceUnavailableError",
            "Settings",
            "UnrecognizedClientError",
            "ValidationError",
            "__version__",
        ]
    )
    for name in kennel.__all__:
        assert hasattr(kennel, name)
