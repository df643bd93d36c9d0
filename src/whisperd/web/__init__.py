"""The web page served at ``/``: plain static files (HTML, CSS, JavaScript modules) shipped as
package data in ``static/``, and the routes that serve them (:mod:`whisperd.web.routes`)."""

from whisperd.web.routes import WEB_PREFIX, install_web, web_paths

__all__ = ["WEB_PREFIX", "install_web", "web_paths"]
