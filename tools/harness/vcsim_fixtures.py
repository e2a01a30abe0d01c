"""pytest fixtures for the vCenter simulator harness (tools/vcsim).

Load with ``pytest_plugins = ["ansible_collections.vic.containers.tools.harness.vcsim_fixtures"]``. Fixtures:

* ``vcsim_binary`` (session): path of the built ``.build/vcsim``.
* ``vcsim`` (module): a running vpx-mode ``vcsim.Simulator`` with datastore nfs0.
* ``vcsim_esx`` (module): the same in esx mode.
* ``soap_counter`` (function): factory ``soap_counter(sim=None) -> SoapCounter``
  counting SOAP calls from now on (``.methods``, ``.calls``, ``.count``,
  ``.reset()``); ``sim`` defaults to the ``vcsim`` fixture.
* ``registries`` (module): local registries (anonymous, basic, token, plain; tools/harness/registry.py),
  each started when a test first asks for it.
* ``emulator`` (module): the host emulator running the ``vcsim`` fixture's container VMs (tools/harness/emulator.py).
"""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

from ansible_collections.vic.containers.tools.harness import vcsim as vcsim_lib


@pytest.fixture(scope="session")
def vcsim_binary():
    # No skip: without the simulator the suite would pass while testing nothing.
    return vcsim_lib.build(REPO_ROOT)


def _running(binary, **kwargs):
    sim = vcsim_lib.Simulator(binary).start(**kwargs)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def vcsim(vcsim_binary):
    yield from _running(vcsim_binary, mode="vpx")


@pytest.fixture(scope="module")
def vcsim_esx(vcsim_binary):
    yield from _running(vcsim_binary, mode="esx")


@pytest.fixture
def soap_counter(request):
    def make(sim=None):
        return vcsim_lib.SoapCounter(sim or request.getfixturevalue("vcsim"))

    return make


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    from ansible_collections.vic.containers.tools.harness.registry import Registries  # pylint: disable=import-outside-toplevel
    found = Registries(tmp_path_factory.mktemp("registries"))
    yield found
    found.close()


@pytest.fixture(scope="module")
def emulator(vcsim):  # pylint: disable=redefined-outer-name
    from ansible_collections.vic.containers.tools.harness.emulator import emulated  # pylint: disable=import-outside-toplevel
    with emulated(vcsim) as running:
        yield running
