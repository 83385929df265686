"""Browser tests of the web viewer (Playwright driving Debian's Chromium)."""
