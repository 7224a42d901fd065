"""The GraphQL engine: documents, limits, cost, query plans, the graphql-core fallback.

It imports graphql-core and Strawberry only, never the rest of `app`. The rest of the
app uses what this module exports.
"""

from app.engine.cache_hints import CacheControl, CacheControlScope, CachePolicy
from app.engine.cost import CostModel, CostPlan, QueryTooComplex
from app.engine.deadlines import DeadlinePassed, finish_by, settle_unwinding
from app.engine.documents import OperationNotFound, PreparedDocument
from app.engine.errors import ClientError, ErrorCode, client_error, too_complex
from app.engine.executor import GraphQLExecutor, OperationTimeout
from app.engine.limits import Limits, validation_rules
from app.engine.relations import BATCH_RESOLVER, BatchResolver
from app.engine.requirements import Required
from app.engine.trusted import always_required, registration_problem

__all__ = [
    "BATCH_RESOLVER",
    "BatchResolver",
    "CacheControl",
    "CacheControlScope",
    "CachePolicy",
    "ClientError",
    "CostModel",
    "CostPlan",
    "DeadlinePassed",
    "ErrorCode",
    "GraphQLExecutor",
    "Limits",
    "OperationNotFound",
    "OperationTimeout",
    "PreparedDocument",
    "QueryTooComplex",
    "Required",
    "always_required",
    "client_error",
    "finish_by",
    "registration_problem",
    "settle_unwinding",
    "too_complex",
    "validation_rules",
]
