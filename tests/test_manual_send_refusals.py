"""Manual sends refuse what a case worker or a registry plugin got wrong, naming it, before
anything is stored: a mistyped VN, attachments that are not what their names say, and a file
sent by hand that would send nothing leaves the person state as it was.

The person state comes from the eCH-0020 corpus's ``baseDelivery.xml``, run through a real
gateway (the fixtures of :mod:`tests.test_manual_send`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.api import send_manual
from gateway.errors import InputRejected
from gateway.plugins import get_plugin_manager
from tests import test_manual_send as base
from tests.flow import running
from tests.test_manual_send import VN, manual_rows

seeded, site = base.seeded, base.site  # its fixtures: the seeded gateway, a copy per test


def test_a_plugin_s_vn_with_a_wrong_check_digit_is_refused_not_stored(site: Path) -> None:
    mistyped = VN[:-1] + str((int(VN[-1]) + 1) % 10)

    async def scenario() -> None:
        async with running(site / "gateway.toml", get_plugin_manager()) as gateway:
            with pytest.raises(InputRejected, match="wrong check digit") as caught:
                await send_manual(gateway.pipeline, gateway.settings, "canton",
                                  "laggardOfFamily", mistyped, requested_by="case 9")
            assert caught.value.where == "person"
            assert mistyped not in str(caught.value)  # no VN in what a plugin may log

    asyncio.run(scenario())
    assert manual_rows(site) == []
