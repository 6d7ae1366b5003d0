"""Status and StatusUpdate: names, liveness, serialisation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from trio_supervisor import Phase, Status, StatusUpdate


@pytest.mark.parametrize(
    ("status", "text", "value", "alive"),
    [
        (Status.IDLE, "Idle", 0, True),
        (Status.RUNNING, "Running", 1, True),
        (Status.STOPPED, "Stopped", 2, False),
        (Status.ERROR, "Error", 3, False),
        (Status.PANIC, "Panic", 4, False),
    ],
    ids=lambda value: str(value),
)
def test_status_names_values_and_liveness(
    status: Status, text: str, value: int, alive: bool
) -> None:
    """Each status has the seed's name, value and liveness."""
    assert str(status) == text
    assert f"{status}" == text
    assert f"{status:d}" == str(value)
    assert int(status) == value
    assert status.is_alive is alive


def test_to_dict_uses_the_seed_field_names_and_never_the_error() -> None:
    """to_dict() has serviceId, serviceName, time and status as an int, no err."""
    update = StatusUpdate(7, "poller", 1.25, Status.ERROR, ValueError("boom"))
    assert update.to_dict() == {
        "serviceId": 7,
        "serviceName": "poller",
        "time": 1.25,
        "status": 3,
    }
    assert json.loads(json.dumps(update.to_dict()))["status"] == 3


def test_status_update_is_frozen() -> None:
    """A StatusUpdate cannot change once made: every reader shares it."""
    update = StatusUpdate(0, "a", 0.0, Status.IDLE, None)
    field_name = "status"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(update, field_name, Status.RUNNING)


def test_phases_are_ordered() -> None:
    """A run's phases compare in the order a run goes through them."""
    assert list(Phase) == sorted(Phase)
    assert str(Phase.STOPPING) == "Stopping"
