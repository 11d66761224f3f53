"""The operator console: server-rendered pages on the admin API's services, at /console.

No JavaScript build step and nothing from a CDN: Jinja2 templates, plain HTML forms and
one local stylesheet, so it works air-gapped. See docs/console.md.
"""

from api.admin.console import company_pages  # noqa: F401 - registers its routes
from api.admin.console.pages import STATIC_DIR, install, router

__all__ = ["STATIC_DIR", "install", "router"]
