#!/usr/bin/env bash
# Thin wrapper: the one copy of the JMeter 5.6.3 provisioning rule ships inside the Python package
# (python/perfsink/jmeter_home.sh), so an installed `perfsink` provisions JMeter exactly as a
# checkout does (perfsink.tools.jmeter_home() runs it). Same arguments, same output.
exec bash "$(dirname "$0")/../python/perfsink/jmeter_home.sh" "$@"
