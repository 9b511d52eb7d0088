"""Fixture: every AWS resource of template.yaml, created in moto (owned by INFRA)."""
