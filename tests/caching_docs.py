"""GraphQL documents shared by the cache tests."""

from __future__ import annotations

# The storefront listing (bench W1).
LISTING = """
query StorefrontListing {
  products(first: 20) {
    edges {
      node {
        id name slug description
        priceRange { min { amount currency } max { amount currency } }
        ratingSummary { average count }
        category { name parent { name } }
        variants { id sku name price { amount currency } inStock }
        images { url alt }
      }
    }
  }
}
"""
# The same listing with a PRIVATE field beside it: never response-cached, entity cache only.
LISTING_WITH_VIEWER = LISTING.replace("query StorefrontListing {", "query Mine {\n  me { id }", 1)
PRODUCT = "query ($id: ID!) { product(id: $id) { id name isPublished } }"
UPDATE_PRODUCT = """
mutation ($id: ID!, $input: ProductUpdateInput!) {
  updateProduct(id: $id, input: $input) { product { id } userErrors { code message } }
}
"""
UPDATE_VARIANT = """
mutation ($id: ID!, $input: VariantUpdateInput!) {
  updateVariant(id: $id, input: $input) { variant { id } userErrors { code message } }
}
"""
