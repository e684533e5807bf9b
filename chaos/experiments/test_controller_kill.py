"""The active KRaft controller is killed with SIGKILL, then started again.

The remaining two voters elect a new controller; leadership of the dead broker's partitions moves.
Nothing is lost or doubled and the pipeline converges after the restart; the client may see errors
while leadership moves, and after the restart at most a few (under 10% of the after phase).
"""

import pytest

from chaos.experiments import common
from chaos.faults import ActiveController, KillAndRestart

pytestmark = pytest.mark.experiment



def scenario(experiment, defects=()):
    return common.run(experiment, KillAndRestart(ActiveController()), defects=defects, budgets=common.RECOVER)


def check(result):
    result.assert_ok()


def test_active_controller_kill(experiment):
    check(scenario(experiment))
