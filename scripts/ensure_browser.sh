#!/usr/bin/env bash
# The report test opens report.html in a real headless browser: Debian's chromium + chromium-driver.
# Installs them when run as root; otherwise prints the command (the browser test then skips).
set -u
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing chromium and chromium-driver for the report's browser test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
    >/dev/null 2>&1 || echo "robolearn: could not install chromium; the browser test will skip" >&2
  exit 0
fi
echo "robolearn: the report's browser test needs: sudo apt-get install chromium chromium-driver" >&2
exit 0
