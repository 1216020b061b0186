"""Client SDK for Council: `Council` plus the wire types of the HTTP API."""

from council_sdk.client import Council, CouncilError
from council_sdk.types import GenerateRequest, GenerateResult, Health, Message

__all__ = ["Council", "CouncilError", "GenerateRequest", "GenerateResult", "Health", "Message"]
