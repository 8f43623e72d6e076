"""The dashboard: the whole loop in a browser (``loopline ui``, or ``loopline serve --ui``).

Pages render from the store through the library functions the CLI uses; each page is also JSON under
``/api``. Scripts, styles and the charting library (Apache ECharts, vendored with its licence) ship in the package:
nothing is fetched from elsewhere. Actions need the admin token.
"""

from loopline.ui._app import add_dashboard, create_ui_app, mount_in_service, ui_router
from loopline.ui._auth import Auth
from loopline.ui._page import Page, Pagination, Params, UIError, View

__all__ = [
    "Auth",
    "Page",
    "Pagination",
    "Params",
    "UIError",
    "View",
    "add_dashboard",
    "create_ui_app",
    "mount_in_service",
    "ui_router",
]
