"""Authentication: bearer tokens verified against their issuers' published keys, and a
development issuer for running without an identity provider."""

from service.auth.dev_issuer import DEV_ISSUER, DevIssuerDisabled, mint_dev_token
from service.auth.tokens import TokenVerifier, bearer_token

__all__ = ["DEV_ISSUER", "DevIssuerDisabled", "TokenVerifier", "bearer_token", "mint_dev_token"]
