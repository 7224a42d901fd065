"""The GraphQL engine: documents, limits, cost, query plans, the graphql-core fallback.

It imports graphql-core and Strawberry only, never the rest of `app`. The rest of the
app uses what this module exports.
"""

from app.engine.cache_hints import CacheControl, CacheControlScope, CachePolicy
from app.engine.cost import CostModel, CostPlan
from app.engine.documents import OperationNotFound, PreparedDocument
from app.engine.errors import ClientError, ErrorCode, client_error, too_complex
from app.engine.executor import GraphQLExecutor, OperationTimeout
from app.engine.limits import Limits, validation_rules
from app.engine.relations import BATCH_RESOLVER, BatchResolver

__all__ = [
    "BATCH_RESOLVER",
    "BatchResolver",
    "CacheControl",
    "CacheControlScope",
    "CachePolicy",
    "ClientError",
    "CostModel",
    "CostPlan",
    "ErrorCode",
    "GraphQLExecutor",
    "Limits",
    "OperationNotFound",
    "OperationTimeout",
    "PreparedDocument",
    "client_error",
    "too_complex",
    "validation_rules",
]
