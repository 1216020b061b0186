"""Client SDK for Council: `Council` / `AsyncCouncil` plus the wire types of the HTTP API."""

from council_sdk.client import (
    AsyncCouncil, AuthenticationError, BadRequestError, Council, CouncilError, NotFoundError, Parsed,
    RateLimitError, ServerError, ServiceUnavailableError,
)
from council_sdk.types import (
    CouncilResult, GenerateRequest, GenerateResult, Health, JsonSchemaFormat, Ledger, Message, PlannerReport,
    ResponseFormat, TaskEvent, TaskRequest, TaskStatus,
)

__all__ = [
    "AsyncCouncil", "AuthenticationError", "BadRequestError", "Council", "CouncilError",
    "CouncilResult", "GenerateRequest", "GenerateResult", "Health", "JsonSchemaFormat", "Ledger", "Message",
    "NotFoundError", "Parsed", "PlannerReport", "RateLimitError", "ResponseFormat", "ServerError",
    "ServiceUnavailableError", "TaskEvent", "TaskRequest", "TaskStatus",
]
