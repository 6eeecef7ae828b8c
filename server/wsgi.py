"""WSGI entry point for gunicorn: ``skyvault.server.wsgi:app``."""

from skyvault.server.app import create_app

app = create_app()
