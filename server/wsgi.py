"""WSGI entry point for gunicorn: ``skyvault.server.wsgi:app``."""

import threading

from skyvault.server.app import create_app
from skyvault.sso import isolation

app = create_app()
# The moving-object search integrates in guarded child processes: start them with the server
# process (gunicorn imports this module in each worker) rather than on the first search.
threading.Thread(target=isolation.warm_up, name="sso-isolation-warm-up", daemon=True).start()
