"""Identity and access: SigV4 request verification, access keys and credentials."""
