"""Storage ports the domain talks to, their in-memory fakes and their AWS adapters (the only boto3 users)."""
