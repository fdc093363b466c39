"""The HTTP service (``mt5gate serve``): settings, API keys, the FastAPI app, streams."""
