"""``python -m tests.clients``: see ``tests/clients/driver.py``."""

from tests.clients.driver import main

raise SystemExit(main())
