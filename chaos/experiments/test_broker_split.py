"""A minority of the brokers (one) is split from the majority (two); clients still reach both sides.

The majority keeps a quorum, fences the minority broker and takes over its partitions; the minority
must not accept acknowledged writes that the majority will not have. Nothing acknowledged is lost or
doubled, and the pipeline converges after the heal.
"""

import pytest

from chaos.experiments import common
from chaos.faults import Split

pytestmark = pytest.mark.experiment



def scenario(experiment, defects=()):
    return common.run(experiment, Split(), defects=defects, budgets=common.RECOVER)


def check(result):
    result.assert_ok()


def test_minority_majority_split(experiment):
    check(scenario(experiment))
