# mk/package.mk - postern installed as a system's MTA (README, "Running
# it for real").
#
#   make install [DESTDIR=D]  the FHS layout: /usr/sbin/postern, the
#                             sendmail links, /etc/postern/ (dist/), the
#                             systemd unit, man pages
#   make deb                  build/postern_$(VERSION)_<arch>.deb with
#                             debhelper (debian/), built in a copy of the
#                             tree (build/deb-src) so that its `clean`
#                             never touches this build/
#   make package-check        make deb, then lintian, the unit's security
#                             score, the deb's files and fields and an
#                             install in a throw-away root (tests/package)

PREFIX      ?= /usr
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
CONFDIR     := $(SYSCONFDIR)/postern
# bookworm's systemd.pc says /lib/systemd/system; later ones /usr/lib/...
UNITDIR     ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
INST_BUILD  := build/inst
DEB_SRC     := build/deb-src
DEB_ARCH     = $(shell dpkg --print-architecture)
DEB_FILE     = build/postern_$(VERSION)_$(DEB_ARCH).deb
# Packaged files are owned by root whoever runs make install (the Debian
# build runs it unprivileged: Rules-Requires-Root: no).
INSTALL     := install
MAN_PAGES   := $(sort $(wildcard docs/man/*.[0-9]))

.PHONY: install install-build deb package-check

# The binary that reads /etc/postern/postern.conf without -c, in its own
# build directory (build/postern keeps etc/postern.conf for make run).
install-build:
	$(MAKE) --no-print-directory BUILD=$(INST_BUILD) \
	  DEFAULT_CONFIG=$(CONFDIR)/postern.conf $(INST_BUILD)/postern

# The config files are installed only where none is yet (an administrator's
# edits survive a second make install; the package's conffiles are dpkg's).
install: install-build
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PREFIX)/lib \
	  $(DESTDIR)$(CONFDIR) $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 $(INST_BUILD)/postern $(DESTDIR)$(SBINDIR)/postern
	ln -sf postern $(DESTDIR)$(SBINDIR)/sendmail
	ln -sf ../sbin/sendmail $(DESTDIR)$(PREFIX)/lib/sendmail
	@for f in postern.conf:0644 users:0640 forwards:0644; do \
	  n=$${f%%:*}; m=$${f#*:}; \
	  if [ -e $(DESTDIR)$(CONFDIR)/$$n ]; then \
	    echo "kept $(DESTDIR)$(CONFDIR)/$$n"; \
	  else \
	    echo "$(INSTALL) -m $$m dist/$$n $(DESTDIR)$(CONFDIR)/$$n"; \
	    $(INSTALL) -m $$m dist/$$n $(DESTDIR)$(CONFDIR)/$$n || exit 1; \
	  fi; done
	$(INSTALL) -m 0644 dist/postern.service $(DESTDIR)$(UNITDIR)/postern.service
	@for m in $(MAN_PAGES); do s=$${m##*.}; \
	  echo "$(INSTALL) -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/"; \
	  $(INSTALL) -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; done
	ln -sf ../man1/postern-send.1 $(DESTDIR)$(MANDIR)/man8/sendmail.8
	@if [ -z "$(DESTDIR)" ]; then \
	  echo "installed; the Debian package (make deb) also makes the postern" \
	    "user, its directories and a TLS certificate: see README"; fi

# dpkg-buildpackage writes into the parent of the tree it builds: build/.
# The copy holds the files git tracks or would (not the ignored ones), as
# they are in the work tree (a
# tree without git: everything but build*/ and var/).  debian/changelog
# and the Build-Depends line are made here, from VERSION and DEB_BUILD.
deb:
	$(call install_debs,$(DEB_BUILD) $(DEB_PKG))
	@rm -rf $(DEB_SRC) && mkdir -p $(DEB_SRC)
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null; \
	else tar --exclude='./build*' --exclude=./var --exclude=./etc/tls -cf - .; \
	fi | tar -xf - -C $(DEB_SRC)
	@sed -i 's/@DEB_BUILD@/$(subst $(space),$(comma) ,$(strip $(filter-out build-essential,$(DEB_BUILD))))/' \
	  $(DEB_SRC)/debian/control
	@when=$$(git log -1 --format=%ct 2>/dev/null || date +%s); \
	{ echo "postern ($(VERSION)) unstable; urgency=medium"; echo; \
	  echo "  * Built by make deb from the postern source tree; its history"; \
	  echo "    is the git log."; echo; \
	  echo " -- postern developers <postern@example.org>  $$(date -u -R -d @$$when)"; \
	} >$(DEB_SRC)/debian/changelog
	@rm -f build/postern_$(VERSION)_*
	cd $(DEB_SRC) && DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=$$(nproc)" \
	  dpkg-buildpackage -b -us -uc >../deb.log 2>&1 || \
	  { tail -40 ../deb.log; echo "make deb failed: build/deb.log" >&2; exit 1; }
	@echo "made $(DEB_FILE) (log: build/deb.log)"

space := $(subst ,, )
comma := ,

# The checks of tests/package print one line each, with the time taken.
package-check:
	@t0=$$(date +%s%N); $(MAKE) --no-print-directory deb >/dev/null || exit 1; \
	echo "package: make deb: ok, $(DEB_FILE) ($$(( ($$(date +%s%N) - t0) / 1000000 )) ms)"
	@POSTERN_DEB=$(abspath $(DEB_FILE)) $(PYTHON) -m pytest -q -s -p no:cacheprovider tests/package
