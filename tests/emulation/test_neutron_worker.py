"""The Neutron agent worker fails a request in which Neutron's own code logged an ERROR.

Neutron's agent logs a refused command (an ``ovs-ofctl`` that rejects a flow) and carries on with the
port unfiltered; a run built on that would count and probe a broken filter. Found when allowed address
pairs travelled with ``FA-16-3E-...`` MACs: every count and the outsider's verdict came out wrong, and
nothing said why.
"""

import logging

import pytest

from labtwin.emulation.neutron_agent.worker import ErrorLog


def test_an_error_logged_during_a_request_fails_it_naming_the_first():
    errors = ErrorLog()
    log = logging.getLogger("neutron.agent.common.ovs_lib")
    log.addHandler(errors)
    try:
        with errors.none_allowed("iteration"):
            log.warning("a warning is not an error")
            log.info("nor is this")
            log.error("Initializing unfiltered port %s that does not exist in ovsdb", "x")  # listed, harmless
        with pytest.raises(RuntimeError, match=r"logged 2 error\(s\) during iteration; the first: .*ovs_lib: "):
            with errors.none_allowed("iteration"):
                log.error("Unable to execute %s", "ovs-ofctl add-flows")
                log.error("a second one")
        with errors.none_allowed("iteration"):  # each request starts clean
            pass
    finally:
        log.removeHandler(errors)
