#!/bin/bash
# t_bridge_restart.sh with the bridge's state in PostgreSQL ([store] backend =
# postgresql, a scratch cluster for the test: bridge/pres.sh), issue 18.
export PB_TEST_STORE=postgresql
. "$(dirname "$0")/t_bridge_restart.sh"
