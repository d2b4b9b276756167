//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/chromedp/chromedp"
)

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

// axeViolation is one failed accessibility rule.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []string `json:"target"`
	} `json:"nodes"`
}

// checkA11y runs axe-core (WCAG 2 A and AA rules) on the page as it is now
// and fails the test on every serious or critical violation. axe-core is a
// test-only npm package (web/e2e/package.json), injected through the
// DevTools protocol, never served by the host.
func (p *tab) checkA11y(screen string) {
	p.t.Helper()
	axeOnce.Do(func() {
		var b []byte
		b, axeErr = os.ReadFile(filepath.Join(root, "web", "e2e", "node_modules", "axe-core", "axe.min.js"))
		axeSource = string(b)
	})
	if axeErr != nil {
		p.t.Fatalf("axe-core is missing (make test-e2e installs it with npm ci): %v", axeErr)
	}
	if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
		p.t.Fatalf("loading axe-core: %v", err)
	}
	raw := eval[string](p, `axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } })
		.then(r => JSON.stringify(r.violations))`)
	var violations []axeViolation
	if err := json.Unmarshal([]byte(raw), &violations); err != nil {
		p.t.Fatal(err)
	}
	for _, v := range violations {
		if v.Impact != "serious" && v.Impact != "critical" {
			continue
		}
		var targets []string
		for _, n := range v.Nodes {
			targets = append(targets, strings.Join(n.Target, " "))
		}
		p.t.Errorf("accessibility (%s screen): %s [%s, %s] at %s", screen, v.Help, v.ID, v.Impact, strings.Join(targets, "; "))
	}
}
