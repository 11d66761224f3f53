"""One router per resource of the partner API."""
