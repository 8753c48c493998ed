"""No part of a database URL's password is ever printed, however the URL parses (issue 12 item 9):
an unencoded '@' made the parser take the password's tail for the host, printed twice."""

from __future__ import annotations

import pytest

from entrypoints.cli import EXIT_UNAVAILABLE, EXIT_USAGE, main
from entrypoints.container.store import scrub

PASSWORD_PIECES = ("hunter", "s3cr3t", "tiger")


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("postgresql://bot:hunter@s3cr3t@127.0.0.1:1/qs", EXIT_USAGE),
        ("postgresql://bot:hunter@s3cr3t@tiger@127.0.0.1:1/qs", EXIT_USAGE),
        ("postgresql://bot:hunter@s3cr3t@[::1/qs", EXIT_USAGE),
        ("postgresql//bot:hunter@s3cr3t@db/qs", EXIT_USAGE),
        ("postgresql://bot:hunters3cr3t@db:notaport/qs", EXIT_USAGE),
        ("postgresql://bot:hunter/s3cr3t@[::1/qs", EXIT_USAGE),
        ("mysql://bot:hunter@s3cr3t@db/qs", EXIT_USAGE),
        ("mysql://bot:hunter/s3cr3t@db/qs", EXIT_USAGE),
        # Parses, and the database refuses the connection: the driver's message is scrubbed too.
        ("postgresql://bot:hunter/s3cr3t@127.0.0.1:1/qs", EXIT_UNAVAILABLE),
    ],
)
def test_no_part_of_the_password_is_printed(
    url: str, code: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QS_DATABASE__URL", url)
    assert main(["db", "current"]) == code
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "error: " in printed
    for piece in PASSWORD_PIECES:
        assert piece not in printed, printed
    assert "Traceback" not in printed


def test_scrub_hides_every_form_of_the_password() -> None:
    url = "postgresql://bot:hun%40ter@s3cr3t@db/qs"
    text = "failed to resolve host 's3cr3t@db' for bot:hun@ter / hun%40ter"
    assert scrub(text, url) == "failed to resolve host '***@db' for bot:*** / ***"
