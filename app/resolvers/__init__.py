"""Root fields of Query (and later Mutation and Subscription): glue between GraphQL and the layers below."""
