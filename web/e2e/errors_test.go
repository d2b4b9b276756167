//go:build e2e

package e2e

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// apiCodes returns every error code the core can answer with: the string
// constants of type Code (wasm/rpc) and rpc.Code (wasm/api).
func apiCodes(t *testing.T) []string {
	t.Helper()
	var codes []string
	for _, file := range []string{"wasm/rpc/rpc.go", "wasm/api/api.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, file), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || vs.Type == nil || len(vs.Values) != len(vs.Names) {
				return true
			}
			switch typ := vs.Type.(type) {
			case *ast.Ident:
				if typ.Name != "Code" {
					return true
				}
			case *ast.SelectorExpr:
				if typ.Sel.Name != "Code" {
					return true
				}
			default:
				return true
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					codes = append(codes, s)
				}
			}
			return true
		})
	}
	if len(codes) < 30 {
		t.Fatalf("found only %d codes: the parser missed the constants", len(codes))
	}
	// rpc.js's own code for a core that stopped.
	return append(codes, "core_stopped")
}

// TestEveryErrorCodeHasASentence walks every error code of the core
// through web/errors.js: each has its own sentence for a person (not the
// general fallback), none carries the core's own English message, and the
// codes where trying again helps offer Retry.
func TestEveryErrorCodeHasASentence(t *testing.T) {
	codes := apiCodes(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is missing: apt-get install -y nodejs")
	}
	in, _ := json.Marshal(codes)
	script := `
const { explain } = await import(process.argv[1]);
const codes = JSON.parse(process.argv[2]);
const goMessage = "creating a queue on the relay: context deadline exceeded";
const out = {};
for (const code of codes) {
  const e = explain({ code, message: goMessage }, "Testing");
  out[code] = e;
}
out["(none)"] = explain(new Error(goMessage), "Testing");
console.log(JSON.stringify(out));
`
	cmd := exec.Command(node, "--input-type=module", "-e", script, "file://"+filepath.Join(root, "web", "errors.js"), string(in))
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, b)
	}
	var got map[string]struct {
		Text  string `json:"text"`
		Retry bool   `json:"retry"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	fallback := got["(none)"].Text
	if !strings.HasPrefix(fallback, "Testing did not work.") || strings.Contains(fallback, "deadline") {
		t.Errorf("an error with no code reads %q", fallback)
	}
	retry := map[string]bool{"relay_unreachable": true, "relay_busy": true, "relay_full": true, "not_ready": true, "internal": true}
	for _, code := range codes {
		e, ok := got[code]
		switch {
		case !ok:
			t.Errorf("%s: no answer", code)
		case e.Text == fallback:
			t.Errorf("%s has no sentence of its own in web/errors.js", code)
		case strings.Contains(e.Text, "deadline") || (strings.Contains(code, "_") && strings.Contains(e.Text, code)):
			t.Errorf("%s reads %q: it shows the core's words", code, e.Text)
		case !strings.HasSuffix(e.Text, ".") && !strings.HasSuffix(e.Text, "…"):
			t.Errorf("%s reads %q: not a sentence", code, e.Text)
		case retry[code] != e.Retry:
			t.Errorf("%s: retry %v, want %v", code, e.Retry, retry[code])
		}
	}
	t.Logf("%d codes, each with its sentence", len(codes))
}
