#!/usr/bin/env bash
# Debian packages some tests use: Chromium (dashboard tests through Playwright) and promtool (package
# prometheus: alert-rule tests, a real Prometheus scraping the worker). Installed when missing and apt-get
# is usable (as root); otherwise those tests skip with a reason.
set -uo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && { echo "system packages: chromium and promtool present"; exit 0; }
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || echo "warning: could not install ${missing[*]}; the tests that need them will skip"
else
  echo "warning: ${missing[*]} missing and apt-get not usable; the tests that need them will skip"
fi
exit 0
