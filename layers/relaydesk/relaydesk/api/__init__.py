"""The support addresses HTTP API (API Gateway HTTP API, IAM auth): routes, schemas and its OpenAPI document."""
