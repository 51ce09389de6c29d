"""``make openapi`` / ``make openapi-check``: the document written from in-process apps."""

from __future__ import annotations

import os
from unittest import mock

from gateway.export import main, merged_document, render

APPS = [
    "identity=services.identity.app:create_app",
    "feed=services.feed.app:create_app",
    "groups=services.groups.app:create_app",
    "moderation=services.moderation.app:create_app",
    "records=services.records.app:create_app",
    "media=services.media.app:create_app",
]


async def test_the_check_fails_on_a_stale_file_and_passes_on_the_document_the_gateway_serves(
    suite, tmp_path, capsys
):
    output = tmp_path / "openapi.json"
    output.write_text('{"openapi": "3.1.0"}\n')
    machine_settings = {"FEED_DATABASE_URL": "sqlite+aiosqlite:////nowhere/feed.db", "GROUPS_PORT": "1"}
    with mock.patch.dict(os.environ, machine_settings):
        assert main([*APPS, "--output", str(output), "--check"]) == 1
        assert "is stale: run `make openapi`" in capsys.readouterr().err
        assert output.read_text() == '{"openapi": "3.1.0"}\n'  # a check writes nothing
        assert "FEED_DATABASE_URL" not in os.environ  # the machine's settings were set aside
        assert os.environ["FEED_INTERNAL_TOKEN"] == "openapi-export"

        # the gateway's live document, from apps built with the test suite's settings
        output.write_text(render(merged_document(suite.services)))
        assert main([*APPS, "--output", str(output), "--check"]) == 0
        # nothing the merge had to guess: no clash, no name left for a person to choose
        assert "warning" not in capsys.readouterr().err
