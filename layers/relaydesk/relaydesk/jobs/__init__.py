"""Long admin operations run as jobs (connect, verify, rotate): recorded step by step so a browser can poll them."""
