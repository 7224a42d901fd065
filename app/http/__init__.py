"""GraphQL over HTTP: transport, the admission pipeline, the OAuth token endpoint, middleware."""
