# labtwin: one entry point for setting up, testing, running and presenting the lab.
#
#   make demo    every scenario on its default topology -> out/ (runs setup first)
#   make test    the whole test suite, notebooks (in chromium too) and emulation included
#   make lab     JupyterLab on notebooks/
#   make slides  every notebook as an offline reveal.js deck under out/slides/
#   make bench   benchmarks under tests/bench/, each against a baseline run alongside
#   make clean   emulation leftovers and out/
#
# `setup` is idempotent and cheap the second time: Debian packages are installed only
# when missing, pip runs only when pyproject.toml changed, and the offline slide assets
# (reveal.js, require.js, jQuery, MathJax, the widget renderer) are fetched once.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.labtwin-installed
WEB := .cache/web
WEB_STAMP := $(WEB)/.installed
OUT ?= out

# Debian packages the lab needs, from the one list of programs it runs (labtwin/emulation/programs.py,
# standard library only, so it runs before the venv exists) plus what the build needs (venv, headers).
APT_PACKAGES := $(shell $(PYTHON) labtwin/emulation/programs.py --packages)
# Packages whose daemons labtwin runs itself, in its own namespaces (Neutron's L3 agent runs keepalived,
# conntrackd and radvd): installed without Debian starting them (a policy-rc.d of ours for the install only,
# where the machine has none), and not enabled at boot where this make setup installed them.
DAEMON_PACKAGES := keepalived conntrackd radvd
ifeq ($(strip $(APT_PACKAGES)),)
$(error setup: could not read the package list: $(PYTHON) labtwin/emulation/programs.py --packages printed nothing)
endif
# Browser-side assets for offline slide decks, pinned; `npm pack` fetches each package's
# own tarball only (no dependency tree): all of them ship prebuilt, standalone files.
WEB_PACKAGES := reveal.js@4.6.1 requirejs@2.3.7 jquery@3.7.1 mathjax@2.7.9 \
                @jupyter-widgets/html-manager@1.0.11
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)
# OVN (Debian 12's 23.03) is unpacked into the venv, never installed: Debian's ovn-host would start an
# ovn-controller against this machine's own OVS (labtwin/emulation/ovn_install.py says more).
OVN := $(VENV)/ovn
OVN_PACKAGES := $(shell $(PYTHON) labtwin/emulation/ovn_install.py --packages)
OVN_STAMP := $(OVN)/.installed

.PHONY: help setup system venv web ovs ovn lab-settings test demo lab slides bench clean

help:
	@sed -n '2,9p' Makefile | sed 's/^# \{0,1\}//'

setup: system venv web ovs ovn lab-settings

system:
ifeq ($(IS_ROOT),yes)
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=ours; \
	    trap 'rm -f /usr/sbin/policy-rc.d' EXIT; trap 'exit 130' INT TERM; fi; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing || exit $$?; \
	  if [ -d /run/systemd/system ]; then for d in $(DAEMON_PACKAGES); do \
	    case " $$missing " in *" $$d "*) systemctl disable --now "$$d.service" >/dev/null 2>&1 || true;; esac; \
	  done; fi; \
	else echo "setup: Debian packages present"; fi
else
	@echo "setup: not root, skipping Debian packages ($(APT_PACKAGES)); install them as root for emulation"
endif

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,neutron]'
	@touch $@

# JupyterLab's defaults for this venv: saved notebooks keep their widgets' state, so a notebook reopened without
# running shows its widgets' last figures, not "model not found" (notebooks/jupyterlab-overrides.json).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
lab-settings: $(LAB_OVERRIDES)

$(LAB_OVERRIDES): notebooks/jupyterlab-overrides.json $(VENV_STAMP)
	@mkdir -p $(dir $@) && cp $< $@ && echo "setup: JupyterLab saves widget state ($@)"

# Re-fetched only when WEB_PACKAGES changes (the stamp records what was fetched).
web:
ifeq ($(strip $(WEB_PACKAGES)),$(strip $(shell cat $(WEB_STAMP) 2>/dev/null)))
	@echo "setup: slide assets present"
else
	@if ! command -v npm >/dev/null; then \
	  echo "setup: npm missing, no offline slide assets (run make setup as root)"; exit 0; fi; \
	set -e; rm -rf $(WEB) && mkdir -p $(WEB)/tgz; \
	echo "setup: fetching slide assets: $(WEB_PACKAGES)"; \
	(cd $(WEB)/tgz && npm pack --silent --loglevel=error $(WEB_PACKAGES) >/dev/null); \
	for t in $(WEB)/tgz/*.tgz; do \
	  name=$$(basename "$$t" .tgz | sed -E 's/-[0-9]+\.[0-9]+\.[0-9]+$$//'); \
	  mkdir -p "$(WEB)/$$name" && tar -xzf "$$t" -C "$(WEB)/$$name" --strip-components=1; \
	done; \
	rm -rf $(WEB)/tgz && echo "$(strip $(WEB_PACKAGES))" > $(WEB_STAMP)
endif

ovs:
ifeq ($(IS_ROOT),yes)
	@if ovs-vsctl --timeout=5 show >/dev/null 2>&1; then echo "setup: Open vSwitch running"; \
	else echo "setup: starting Open vSwitch (userspace datapath)"; $(VENV)/bin/labtwin doctor --fix >/dev/null || true; \
	  ovs-vsctl --timeout=5 show >/dev/null || { echo "setup: Open vSwitch did not start"; exit 1; }; fi
else
	@echo "setup: not root, not starting Open vSwitch (emulation tests will be skipped)"
endif

# Re-unpacked only when OVN_PACKAGES changes (the stamp records what was unpacked); apt's lists are
# refreshed once if they do not know the packages yet.
ovn: venv
ifeq ($(strip $(OVN_PACKAGES)),$(strip $(shell cat $(OVN_STAMP) 2>/dev/null)))
	@echo "setup: OVN present (unpacked in $(OVN))"
else ifneq ($(IS_ROOT),yes)
	@echo "setup: not root, not unpacking OVN (apt may need to refresh its lists; emulation needs root anyway)"
else
	@set -e; rm -rf $(OVN) && mkdir -p $(OVN)/debs; \
	echo "setup: unpacking OVN (never installed): $(OVN_PACKAGES)"; \
	cd $(OVN)/debs; \
	apt-get download -q $(OVN_PACKAGES) 2>/dev/null || { apt-get update -q && apt-get download -q $(OVN_PACKAGES); }; \
	cd - >/dev/null; \
	for deb in $(OVN)/debs/*.deb; do dpkg -x "$$deb" $(OVN); done; \
	rm -rf $(OVN)/debs; \
	test -x $(OVN)/usr/bin/ovn-northd || { echo "setup: OVN did not unpack into $(OVN)"; exit 1; }; \
	echo "$(strip $(OVN_PACKAGES))" > $(OVN_STAMP)
endif

test: setup
	$(VENV)/bin/python -m pytest tests/ --durations=25

demo: setup
	$(VENV)/bin/labtwin demo --out $(OUT)

lab: setup
	$(VENV)/bin/jupyter lab --allow-root --no-browser --ip 127.0.0.1 --port 8888 --notebook-dir notebooks

slides: setup
	$(VENV)/bin/labtwin slides notebooks/*.ipynb --out $(OUT)/slides

bench: setup
	$(VENV)/bin/python tests/bench/run.py

clean:
	@if [ -x $(VENV)/bin/labtwin ]; then $(VENV)/bin/labtwin clean; fi
	rm -rf $(OUT)
