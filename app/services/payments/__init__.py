"""Payments: gateways (authorize, capture, refund) with no GraphQL in them."""
