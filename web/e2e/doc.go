//go:build e2e

// Package e2e holds Wisp's browser end-to-end tests. They drive Debian's
// headless Chromium with chromedp against the real wisp-host (and relay)
// binaries started as processes on free loopback ports. TestFirefox also
// drives Firefox ESR, with puppeteer-core (npm) over WebDriver BiDi from
// firefox/smoke.mjs.
//
// Run them through make, which builds the binaries first:
//
//	make test-e2e            # or: WISP_ROOT=$PWD go test -tags e2e ./web/e2e/
//
// Every test gets its own isolated browser context (separate storage, as
// two different people would have), fails on any console error, uncaught
// exception or Content-Security-Policy violation, and leaves a screenshot in
// web/e2e/artifacts/ (git-ignored).
package e2e
