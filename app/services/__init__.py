"""Domain operations with no GraphQL in them."""
