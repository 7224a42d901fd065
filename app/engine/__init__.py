"""The GraphQL engine: documents, limits, cost, query plans, the graphql-core fallback.

It imports graphql-core and Strawberry only, never the rest of `app`.
"""
