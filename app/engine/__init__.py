"""The GraphQL engine: documents, limits, cost, query plans, the graphql-core fallback.

It imports graphql-core and Strawberry only, never the rest of `app`. The rest of the
app uses what this module exports.
"""

from app.engine.cost import CostModel, CostPlan
from app.engine.errors import ClientError, ErrorCode, client_error
from app.engine.executor import (
    GraphQLExecutor,
    OperationNotFound,
    OperationTimeout,
    PreparedDocument,
)
from app.engine.limits import Limits, too_complex, validation_rules
from app.engine.plans import BATCH_RESOLVER, BatchResolver

__all__ = [
    "BATCH_RESOLVER",
    "BatchResolver",
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
